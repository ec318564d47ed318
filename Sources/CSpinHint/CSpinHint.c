/* SwiftPM needs one source file per C target; the hint is an inline function in the header. */
#include "CSpinHint.h"
