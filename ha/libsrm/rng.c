/*
 * xoshiro256** (David Blackman and Sebastiano Vigna, public domain reference algorithm),
 * seeded through splitmix64, with unbiased ranges. Good statistical quality and fast; not
 * for secrets (re-login delays only need to be spread evenly and unpredictably enough).
 */
#include "srm.h"

#include <errno.h>
#include <sys/random.h>

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void srm_rng_seed(struct srm_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

int srm_rng_init(struct srm_rng *rng)
{
    uint64_t seed[4];
    size_t got = 0;

    while (got < sizeof(seed)) {
        ssize_t r = getrandom((char *)seed + got, sizeof(seed) - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    for (int i = 0; i < 4; i++)
        rng->s[i] = seed[i];
    /* The all-zero state is the one state the generator cannot leave. */
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        srm_rng_seed(rng, 1);
    return 0;
}

uint64_t srm_rng_next(struct srm_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t srm_rng_range(struct srm_rng *rng, uint64_t lower, uint64_t upper)
{
    uint64_t span, threshold, x;

    if (upper < lower) {
        uint64_t t = upper;
        upper = lower;
        lower = t;
    }
    span = upper - lower + 1;
    if (span == 0) /* the whole 64-bit range */
        return srm_rng_next(rng);
    /* Reject the lowest 2^64 mod span values so that every residue is equally likely. */
    threshold = (0 - span) % span;
    do {
        x = srm_rng_next(rng);
    } while (x < threshold);
    return lower + x % span;
}

uint64_t srm_relogin_delay_ms(struct srm_rng *rng, uint32_t lower_s, uint32_t upper_s)
{
    return srm_rng_range(rng, (uint64_t)lower_s * 1000u, (uint64_t)upper_s * 1000u);
}
