#ifndef CNIFTI_H
#define CNIFTI_H
/* Swift's view of libnifti (nifti2_io reads NIfTI-1 and NIfTI-2) and zlib. */
#include <nifti2_io.h>
#include <zlib.h>
#endif
