/* SwiftPM needs one source file per C target; the API is libnifti's own (see include/CNIfTI.h). */
#include "CNIfTI.h"
