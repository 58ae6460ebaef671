/* The limit the Swift SIP layer can approach: the same parse + proxy edits + serialize cycle written
   directly against libosip2. usage: osip_cycle FILE ITERATIONS */
#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void silent(const char *fi, int li, osip_trace_level_t level, const char *chfr, va_list ap) {
    (void)fi; (void)li; (void)level; (void)chfr; (void)ap;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s FILE ITERATIONS\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    static char buf[65536];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    long iterations = atol(argv[2]);
    parser_init();
    osip_trace_initialize_func(TRACE_LEVEL0, silent);
    struct timespec start, end;
    size_t total = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < iterations; i++) {
        osip_message_t *sip;
        osip_message_init(&sip);
        if (osip_message_parse(sip, buf, len) != 0) { fprintf(stderr, "parse failed\n"); return 1; }
        osip_header_t *mf = NULL;
        osip_message_header_get_byname(sip, "max-forwards", 0, &mf);
        int hops = mf ? atoi(mf->hvalue) : 70;
        char value[16];
        snprintf(value, sizeof value, "%d", hops > 0 ? hops - 1 : 0);
        if (mf) { osip_free(mf->hvalue); mf->hvalue = osip_strdup(value); }
        osip_via_t *via; osip_via_init(&via);
        osip_via_parse(via, "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKtandem0a1b2c3d");
        osip_list_add(&sip->vias, via, 0);
        osip_record_route_t *rr; osip_record_route_init(&rr);
        osip_record_route_parse(rr, "<sip:198.51.100.1:5060;lr>");
        osip_list_add(&sip->record_routes, rr, 0);
        osip_message_force_update(sip);
        char *out; size_t outlen;
        osip_message_to_str(sip, &out, &outlen);
        total += outlen;
        osip_free(out);
        osip_message_free(sip);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("c %ld cycles %.3f s %.0f msgs/s %zu bytes out\n", iterations, seconds, iterations / seconds, total / iterations);
    return 0;
}
