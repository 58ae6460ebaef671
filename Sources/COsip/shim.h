#ifndef TANDEM_COSIP_SHIM_H
#define TANDEM_COSIP_SHIM_H

#include <stdarg.h>
#include <stdlib.h>
#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>
#include <osip2/osip.h>

/* libosip2's accessors are statement macros, which Swift cannot import (LIBOSIP2.md pitfall 1). */

static inline void tandem_osip_free(void *p) { if (p != NULL) osip_free(p); }

static void tandem_osip_silent_trace(const char *fi, int li, osip_trace_level_t level, const char *chfr, va_list ap) {
    (void)fi; (void)li; (void)level; (void)chfr; (void)ap;
}

/* Debian's build prints parse errors to stdout even with tracing off (pitfall 4). */
static inline void tandem_osip_silence(void) {
    osip_trace_initialize_func(TRACE_LEVEL0, tandem_osip_silent_trace);
}

static inline int tandem_osip_header_get_byname(osip_message_t *sip, const char *name, int pos, osip_header_t **dest) {
    return osip_message_header_get_byname(sip, name, pos, dest);
}

static inline const char *tandem_osip_param_value(osip_list_t *params, const char *name) {
    osip_generic_param_t *p = NULL;
    if (osip_generic_param_get_byname(params, (char *)name, &p) != OSIP_SUCCESS || p == NULL) return NULL;
    return p->gvalue;
}

static inline int tandem_osip_has_param(osip_list_t *params, const char *name) {
    osip_generic_param_t *p = NULL;
    return osip_generic_param_get_byname(params, (char *)name, &p) == OSIP_SUCCESS && p != NULL;
}

static inline int tandem_osip_param_add(osip_list_t *params, const char *name, const char *value) {
    return osip_generic_param_add(params, osip_strdup(name), value ? osip_strdup(value) : NULL);
}

static inline char *tandem_osip_strdup(const char *s) { return osip_strdup(s); }

static inline void tandem_osip_message_force_update(osip_message_t *sip) { (void)osip_message_force_update(sip); }

#endif
