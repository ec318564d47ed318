/* SwiftPM needs one source file per C target; the constants are macros (include/CTargetFeatures.h),
 * evaluated by each importing Swift module's Clang importer with that module's target flags. */
#include "CTargetFeatures.h"
