#ifndef CMPI_H
#define CMPI_H
/* Swift's view of Open MPI: the few collectives data-parallel training needs, as plain C
 * functions over MPI_COMM_WORLD.
 *
 * Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are macros around the addresses of
 * library globals, which Swift cannot import; wrapping them here also keeps <mpi.h> out of this
 * header, so Swift code importing CMPI needs no MPI include path. Every function returns an MPI
 * error code (MPI_SUCCESS = 0) unless stated otherwise; counts are element counts and may exceed
 * INT_MAX (large buffers are sent in chunks). */
#include <stddef.h>

/* MPI_Init_thread with MPI_THREAD_FUNNELED (only the main thread calls MPI; compute threads may
 * exist). Sets *provided to the thread level granted. */
int cmpi_init(int *provided);
/* 1 when MPI_Init has run, 0 otherwise (MPI_Initialized). */
int cmpi_is_initialized(void);
/* 1 when MPI_Finalize has run. */
int cmpi_is_finalized(void);
int cmpi_finalize(void);

int cmpi_rank(int *rank);
int cmpi_size(int *size);

/* In-place sums over all ranks (MPI_Allreduce with MPI_IN_PLACE). */
int cmpi_allreduce_sum_float(float *buffer, size_t count);
int cmpi_allreduce_sum_double(double *buffer, size_t count);
/* In-place maximum over all ranks. */
int cmpi_allreduce_max_double(double *buffer, size_t count);

/* Copies root's `count` bytes into every rank's buffer (MPI_Bcast of MPI_BYTE). */
int cmpi_broadcast_bytes(void *buffer, size_t count, int root);

int cmpi_barrier(void);

/* MPI_Abort(MPI_COMM_WORLD, code): asks the launcher to kill every rank; does not return. */
void cmpi_abort(int code);

/* Seconds since an arbitrary origin (MPI_Wtime). */
double cmpi_wtime(void);

/* The library's message for an error code, into buffer (NUL-terminated, truncated to size). */
void cmpi_error_string(int code, char *buffer, size_t size);

/* The library's version line (MPI_Get_library_version), into buffer as above. */
void cmpi_library_version(char *buffer, size_t size);
#endif
