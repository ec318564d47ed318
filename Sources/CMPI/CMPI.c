#include "CMPI.h"
#include <limits.h>
#include <mpi.h>
#include <string.h>

/* MPI counts are ints: larger buffers go in chunks of at most this many elements. */
#define CMPI_CHUNK ((size_t)1 << 30)

int cmpi_init(int *provided) {
    return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided);
}

int cmpi_is_initialized(void) {
    int flag = 0;
    MPI_Initialized(&flag);
    return flag;
}

int cmpi_is_finalized(void) {
    int flag = 0;
    MPI_Finalized(&flag);
    return flag;
}

int cmpi_finalize(void) { return MPI_Finalize(); }

int cmpi_rank(int *rank) { return MPI_Comm_rank(MPI_COMM_WORLD, rank); }

int cmpi_size(int *size) { return MPI_Comm_size(MPI_COMM_WORLD, size); }

static int allreduce(void *buffer, size_t count, size_t width, MPI_Datatype type, MPI_Op op) {
    char *p = buffer;
    while (count > 0) {
        size_t n = count < CMPI_CHUNK ? count : CMPI_CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, (int)n, type, op, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        p += n * width;
        count -= n;
    }
    return MPI_SUCCESS;
}

int cmpi_allreduce_sum_float(float *buffer, size_t count) {
    return allreduce(buffer, count, sizeof(float), MPI_FLOAT, MPI_SUM);
}

int cmpi_allreduce_sum_double(double *buffer, size_t count) {
    return allreduce(buffer, count, sizeof(double), MPI_DOUBLE, MPI_SUM);
}

int cmpi_allreduce_max_double(double *buffer, size_t count) {
    return allreduce(buffer, count, sizeof(double), MPI_DOUBLE, MPI_MAX);
}

int cmpi_broadcast_bytes(void *buffer, size_t count, int root) {
    char *p = buffer;
    while (count > 0) {
        size_t n = count < CMPI_CHUNK ? count : CMPI_CHUNK;
        int rc = MPI_Bcast(p, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        p += n;
        count -= n;
    }
    return MPI_SUCCESS;
}

int cmpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

void cmpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

double cmpi_wtime(void) { return MPI_Wtime(); }

void cmpi_error_string(int code, char *buffer, size_t size) {
    if (size == 0) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
    text[length < MPI_MAX_ERROR_STRING ? length : MPI_MAX_ERROR_STRING - 1] = 0;
    strncpy(buffer, text, size - 1);
    buffer[size - 1] = 0;
}

void cmpi_library_version(char *buffer, size_t size) {
    if (size == 0) return;
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) length = 0;
    text[length < MPI_MAX_LIBRARY_VERSION_STRING ? length : MPI_MAX_LIBRARY_VERSION_STRING - 1] = 0;
    strncpy(buffer, text, size - 1);
    buffer[size - 1] = 0;
}
