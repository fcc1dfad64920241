/* internal.h - declarations shared only inside libst. */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include "st.h"

/* Jansson's json_t behind the opaque struct st_json. */
#define J(x) ((json_t *)(x))
#define SJ(x) ((struct st_json *)(x))

#endif
