/* Compiled with -std=c99 -pedantic -Wall -Wextra -Werror: kiln.h must stay plain C99. */
#include "kiln/kiln.h"

int kiln_header_check(void) { return KILN_DTYPE_FLOAT32 + KILN_ABI_VERSION; }
