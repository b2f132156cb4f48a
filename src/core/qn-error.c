#include "qn-error.h"

G_DEFINE_QUARK(qemu-numa-error-quark, qn_error)
