/* test_sha256.c - SHA-256 known answers (FIPS 180-2 examples), streaming == one-shot. */
#include <stdint.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sha256.h"
#include "tests/unit/check.h"

static void test_known_answers(void)
{
    char hex[65];
    CHECK_OK(lg_sha256_buf("", 0, hex));
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    CHECK_OK(lg_sha256_buf("abc", 3, hex));
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    CHECK_OK(lg_sha256_buf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex));
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
}

static void test_million_a_streamed(void)
{
    /* one million 'a' through a file: spans many 64 KiB chunks, odd tail */
    char path[] = "/tmp/lgsha256XXXXXX", hex[65];
    char block[1001];
    uint64_t size = 0;
    int fd = mkstemp(path), i;
    lg_sha256 h = {0};
    CHECK(fd >= 0);
    memset(block, 'a', sizeof block);
    for (i = 0; i < 1000; i++)
        CHECK(write(fd, block, 1000) == 1000);
    close(fd);
    CHECK_OK(lg_sha256_file(path, hex, &size));
    CHECK(size == 1000000);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    /* incremental with uneven pieces gives the same digest */
    CHECK_OK(lg_sha256_init(&h));
    for (i = 0; i < 1000; i++)
        CHECK_OK(lg_sha256_update(&h, block, (i % 2) ? 999 : 1001));
    CHECK_OK(lg_sha256_final(&h, hex));
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    unlink(path);
    CHECK(lg_sha256_file(path, hex, NULL) == LG_ENOTFOUND);
}

static void test_hex_validation(void)
{
    const char *good = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    CHECK(lg_sha256_hex_valid(good));
    CHECK(!lg_sha256_hex_valid("E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(!lg_sha256_hex_valid("e3b0"));
    CHECK(!lg_sha256_hex_valid("../../../../etc/passwd000000000000000000000000000000000000000000000"));
    CHECK(!lg_sha256_hex_valid(NULL));
    CHECK(lg_sha256_prefix_valid("e3b0"));
    CHECK(!lg_sha256_prefix_valid(""));
    CHECK(!lg_sha256_prefix_valid("e3g0"));
}

CHECK_MAIN(T(test_known_answers), T(test_million_a_streamed), T(test_hex_validation))
