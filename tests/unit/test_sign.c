/* test_sign.c - signed evidence (ledger/sign.h): base64 against RFC 4648
 * vectors, Ed25519 public-key derivation against RFC 8032 test 1, key files
 * (mode, no overwrite, names), signature.json round trip and every way of
 * breaking it, public key lines and trusted-keys files. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "ledger/sign.h"
#include "tests/unit/check.h"

static char tmpdir[256];

static void setup_dir(void)
{
    if (tmpdir[0])
        return;
    snprintf(tmpdir, sizeof tmpdir, "%s/lg-test-sign-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(3);
    }
    setenv("LEDGER_KEY_DIR", tmpdir, 1);
}

static void test_base64(void)
{
    static const struct { const char *in, *out; } v[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"}};
    size_t i;
    unsigned char b[8];
    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        lg_buf o = LG_BUF_INIT;
        size_t n = strlen(v[i].in);
        CHECK_OK(lg_base64_encode((const unsigned char *)v[i].in, n, &o));
        CHECK_MSG(o.ptr && strcmp(o.ptr, v[i].out) == 0, "%s -> %s", v[i].in, o.ptr ? o.ptr : "(null)");
        memset(b, 0, sizeof b);
        CHECK(lg_base64_decode_exact(v[i].out, b, n) == 0 && memcmp(b, v[i].in, n) == 0);
        lg_buf_release(&o);
    }
    /* strict: wrong length, bad characters, misplaced or non-canonical padding */
    CHECK(lg_base64_decode_exact("Zm9v", b, 2) == LG_EINPUT);
    CHECK(lg_base64_decode_exact("Zg==", b, 2) == LG_EINPUT);
    CHECK(lg_base64_decode_exact("Zh==", b, 1) == LG_EINPUT); /* unused bits set */
    CHECK(lg_base64_decode_exact("Zm8", b, 2) == LG_EINPUT);
    CHECK(lg_base64_decode_exact("Z=9v", b, 3) == LG_EINPUT);
    CHECK(lg_base64_decode_exact("Zm9 ", b, 3) == LG_EINPUT);
    CHECK(lg_base64_decode_exact("Zm=v", b, 3) == LG_EINPUT);
    CHECK(lg_base64_decode_exact(NULL, b, 1) == LG_EINPUT);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(3);
    }
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* RFC 8032 section 7.1, TEST 1: the public key derived from the secret. */
static void test_rfc8032_public_key(void)
{
    static const unsigned char der_prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                                 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
    static const unsigned char secret[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                             0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                             0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    static const unsigned char want[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                           0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                           0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    unsigned char der[48];
    lg_buf pem = LG_BUF_INIT, path = LG_BUF_INIT;
    lg_pubkey pub;
    setup_dir();
    memcpy(der, der_prefix, 16);
    memcpy(der + 16, secret, 32);
    CHECK_OK(lg_buf_puts(&pem, "-----BEGIN PRIVATE KEY-----\n"));
    CHECK_OK(lg_base64_encode(der, sizeof der, &pem));
    CHECK_OK(lg_buf_puts(&pem, "\n-----END PRIVATE KEY-----\n"));
    CHECK_OK(lg_buf_printf(&path, "%s/rfc.pem", tmpdir));
    write_file(path.ptr, pem.ptr, 0600);
    CHECK_OK(lg_key_load_public(path.ptr, &pub));
    CHECK(memcmp(pub.raw, want, 32) == 0);
    /* the same key readable by others is refused, like ssh does */
    chmod(path.ptr, 0644);
    CHECK(lg_key_load_public(path.ptr, &pub) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "chmod 600") != NULL);
    lg_buf_release(&pem);
    lg_buf_release(&path);
}

static void test_keys(void)
{
    lg_pubkey a, b, parsed;
    lg_buf path = LG_BUF_INIT, line = LG_BUF_INIT, res = LG_BUF_INIT;
    struct stat sb;
    char *name = NULL;
    setup_dir();
    CHECK_OK(lg_key_generate("alice", &a, &path));
    CHECK(stat(path.ptr, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(lg_key_generate("alice", &b, NULL) == LG_EINPUT); /* never overwritten */
    CHECK_OK(lg_key_generate("bob", &b, NULL));
    CHECK(memcmp(a.raw, b.raw, 32) != 0);
    CHECK_OK(lg_key_load_public(path.ptr, &parsed));
    CHECK(memcmp(a.raw, parsed.raw, 32) == 0);
    CHECK_OK(lg_key_resolve("alice", &res));
    CHECK(strcmp(res.ptr, path.ptr) == 0);
    CHECK_OK(lg_key_resolve(path.ptr, &res));
    CHECK(lg_key_resolve("nobody", &res) == LG_ENOTFOUND);
    CHECK(strstr(lg_error_msg(), "ledger key generate") != NULL);
    CHECK(lg_key_resolve("../etc/x", &res) == LG_ENOTFOUND); /* a path, taken as such */
    CHECK(lg_key_generate("../evil", &b, NULL) == LG_EINPUT);
    CHECK(lg_key_generate(".hidden", &b, NULL) == LG_EINPUT);
    CHECK(lg_key_generate("", &b, NULL) == LG_EINPUT);
    CHECK(lg_key_generate("a/b", &b, NULL) == LG_EINPUT);
    /* lines */
    CHECK_OK(lg_key_format_line(&a, "alice", &line));
    CHECK(strncmp(line.ptr, "ed25519 ", 8) == 0 && strlen(line.ptr) == 8 + 44 + 6);
    CHECK_OK(lg_key_parse_line(line.ptr, "t", &parsed, &name));
    CHECK(memcmp(a.raw, parsed.raw, 32) == 0 && name && strcmp(name, "alice") == 0);
    lg_free(name);
    name = NULL;
    lg_buf_clear(&line);
    CHECK_OK(lg_key_format_line(&a, NULL, &line));
    CHECK_OK(lg_buf_puts(&line, "  \r\n"));
    CHECK_OK(lg_key_parse_line(line.ptr, "t", &parsed, &name));
    CHECK(name == NULL);
    CHECK(lg_key_parse_line("ssh-ed25519 AAAA x", "f:3", &parsed, NULL) == LG_EINPUT);
    CHECK(strncmp(lg_error_msg(), "f:3:", 4) == 0);
    CHECK(lg_key_parse_line("ed25519 Zm9v x", "t", &parsed, NULL) == LG_EINPUT);
    CHECK(lg_key_parse_line("ed25519", "t", &parsed, NULL) == LG_EINPUT);
    lg_buf_clear(&line);
    CHECK_OK(lg_key_format_line(&a, "alice", &line));
    CHECK_OK(lg_buf_puts(&line, " extra"));
    CHECK(lg_key_parse_line(line.ptr, "t", &parsed, NULL) == LG_EINPUT);
    lg_buf_release(&path);
    lg_buf_release(&line);
    lg_buf_release(&res);
}

static const char *RUN_ID = "5f0e6b1c2d3a4958a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4";

static int check_text(const char *json, const char *id) { return lg_sign_check(json, strlen(json), id, NULL); }

static void test_sign_and_check(void)
{
    lg_buf path = LG_BUF_INIT, sig = LG_BUF_INIT, t = LG_BUF_INIT;
    lg_pubkey pub, signer;
    char other[65], *p;
    cJSON *j;
    setup_dir();
    CHECK_OK(lg_key_resolve("alice", &path));
    CHECK_OK(lg_key_load_public(path.ptr, &pub));
    CHECK_OK(lg_sign_run(path.ptr, RUN_ID, &sig));
    CHECK(sig.ptr && sig.ptr[sig.len - 1] == '\n');
    CHECK_OK(lg_sign_check(sig.ptr, sig.len, RUN_ID, &signer));
    CHECK(memcmp(signer.raw, pub.raw, 32) == 0);
    /* deterministic (Ed25519): the same key and id give the same bytes */
    CHECK_OK(lg_sign_run(path.ptr, RUN_ID, &t));
    CHECK(strcmp(t.ptr, sig.ptr) == 0);
    /* another run id */
    snprintf(other, sizeof other, "%s", RUN_ID);
    other[63] = other[63] == '0' ? '1' : '0';
    CHECK(lg_sign_check(sig.ptr, sig.len, other, NULL) == LG_ECHECK);
    CHECK(strstr(lg_error_msg(), "not this run") != NULL);
    /* "signed" rewritten to the other id: the signature no longer verifies */
    lg_buf_clear(&t);
    CHECK_OK(lg_buf_puts(&t, sig.ptr));
    p = strstr(t.ptr, RUN_ID);
    CHECK(p != NULL);
    if (p)
        memcpy(p, other, 64);
    CHECK(check_text(t.ptr, other) == LG_ECHECK);
    CHECK(strstr(lg_error_msg(), "does not verify") != NULL);
    /* one character of the signature changed */
    lg_buf_clear(&t);
    CHECK_OK(lg_buf_puts(&t, sig.ptr));
    p = strstr(t.ptr, "\"sig\":\"");
    if (p) {
        p += 7 + 10;
        *p = *p == 'A' ? 'B' : 'A';
    }
    CHECK(check_text(t.ptr, RUN_ID) == LG_ECHECK);
    /* the key swapped for another one */
    j = cJSON_Parse(sig.ptr);
    {
        lg_buf k = LG_BUF_INIT;
        lg_pubkey b;
        char *s;
        lg_buf bp = LG_BUF_INIT;
        CHECK_OK(lg_key_resolve("bob", &bp));
        CHECK_OK(lg_key_load_public(bp.ptr, &b));
        CHECK_OK(lg_base64_encode(b.raw, 32, &k));
        cJSON_ReplaceItemInObjectCaseSensitive(j, "key", cJSON_CreateString(k.ptr));
        s = cJSON_PrintUnformatted(j);
        CHECK(check_text(s, RUN_ID) == LG_ECHECK);
        cJSON_free(s);
        /* an extra key */
        cJSON_AddStringToObject(j, "note", "x");
        s = cJSON_PrintUnformatted(j);
        CHECK(check_text(s, RUN_ID) == LG_ECHECK);
        CHECK(strstr(lg_error_msg(), "unknown or repeated") != NULL);
        cJSON_free(s);
        lg_buf_release(&k);
        lg_buf_release(&bp);
    }
    cJSON_Delete(j);
    /* malformed documents */
    CHECK(check_text("", RUN_ID) == LG_ECHECK);
    CHECK(check_text("[1]", RUN_ID) == LG_ECHECK);
    CHECK(check_text("{\"format\":1}", RUN_ID) == LG_ECHECK);
    CHECK(check_text("{\"format\":2,\"alg\":\"ed25519\",\"key\":\"\",\"signed\":\"\",\"sig\":\"\"}", RUN_ID) == LG_ECHECK);
    CHECK(check_text("{\"format\":1,\"alg\":\"rsa\",\"key\":\"\",\"signed\":\"\",\"sig\":\"\"}", RUN_ID) == LG_ECHECK);
    CHECK(check_text("{\"format\":1,\"alg\":\"ed25519\",\"key\":7,\"signed\":\"\",\"sig\":\"\"}", RUN_ID) == LG_ECHECK);
    CHECK(lg_sign_run(path.ptr, "not-a-run-id", &t) == LG_EINPUT);
    lg_buf_release(&path);
    lg_buf_release(&sig);
    lg_buf_release(&t);
}

static void test_keyring(void)
{
    lg_keyring kr = LG_KEYRING_INIT;
    lg_buf file = LG_BUF_INIT, path = LG_BUF_INIT, line = LG_BUF_INIT, text = LG_BUF_INIT;
    lg_pubkey a, b;
    int added = -1;
    setup_dir();
    CHECK_OK(lg_key_resolve("alice", &path));
    CHECK_OK(lg_key_load_public(path.ptr, &a));
    CHECK_OK(lg_key_resolve("bob", &path));
    CHECK_OK(lg_key_load_public(path.ptr, &b));
    CHECK_OK(lg_buf_printf(&file, "%s/trusted", tmpdir));
    CHECK_OK(lg_keyring_load(file.ptr, &kr)); /* missing: empty */
    CHECK(kr.n == 0);
    CHECK_OK(lg_keyring_trust(file.ptr, &a, "alice", &added));
    CHECK(added == 1);
    CHECK_OK(lg_keyring_trust(file.ptr, &a, "alice-again", &added));
    CHECK(added == 0);
    CHECK_OK(lg_keyring_load(file.ptr, &kr));
    CHECK(kr.n == 1 && lg_keyring_find(&kr, &a) == 0 && lg_keyring_find(&kr, &b) == -1);
    CHECK(kr.names[0] && strcmp(kr.names[0], "alice") == 0);
    /* comments, blank lines, a key without a name */
    CHECK_OK(lg_file_read(file.ptr, 0, &text));
    CHECK_OK(lg_buf_puts(&text, "\n   # a comment\n\t\n"));
    CHECK_OK(lg_key_format_line(&b, NULL, &text));
    CHECK_OK(lg_buf_puts(&text, "\n"));
    CHECK_OK(lg_file_write_atomic(file.ptr, text.ptr, text.len));
    CHECK_OK(lg_keyring_load(file.ptr, &kr));
    CHECK(kr.n == 2 && lg_keyring_find(&kr, &b) == 1 && kr.names[1] == NULL);
    /* a malformed line is an error naming file:line, and trust refuses to append to it */
    CHECK_OK(lg_buf_puts(&text, "ed25519 garbage\n"));
    CHECK_OK(lg_file_write_atomic(file.ptr, text.ptr, text.len));
    CHECK(lg_keyring_load(file.ptr, &kr) == LG_EINPUT);
    CHECK(kr.n == 0);
    lg_buf_clear(&line);
    CHECK_OK(lg_buf_printf(&line, "%s:8:", file.ptr));
    CHECK_MSG(strncmp(lg_error_msg(), line.ptr, line.len) == 0, "%s", lg_error_msg());
    CHECK(lg_keyring_trust(file.ptr, &b, "bob", &added) == LG_EINPUT);
    lg_keyring_release(&kr);
    lg_buf_release(&file);
    lg_buf_release(&path);
    lg_buf_release(&line);
    lg_buf_release(&text);
}

static void cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK_MSG(!tmpdir[0] || system(cmd) == 0, "could not remove %s", tmpdir);
}

CHECK_MAIN(T(test_base64), T(test_rfc8032_public_key), T(test_keys), T(test_sign_and_check), T(test_keyring),
           T(cleanup))
