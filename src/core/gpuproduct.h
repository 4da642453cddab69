/*
 * gpuproduct.h - Plinth GPU type ids and the node labels that select them
 * (pure).
 *
 * One table, used by the manifest renderer (which nodeSelector a rendered Job
 * carries) and by the admission webhook (which GPU type a pod's nodeSelector
 * asks for), so the two can never disagree.
 */
#ifndef PLINTH_GPUPRODUCT_H
#define PLINTH_GPUPRODUCT_H

/* The node label GPU Feature Discovery sets (e.g. "NVIDIA-H100-80GB-HBM3"). */
#define GPU_PRODUCT_LABEL "nvidia.com/gpu.product"
/* Plinth's own node label, for GPU types that are not in the table. */
#define GPU_TYPE_LABEL "plinth.io/gpu-type"
/* The label that names a pod's or Job's allocation. */
#define GPU_ALLOCATION_LABEL "plinth.io/allocation-id"
/* The extended resource the NVIDIA device plugin advertises. */
#define GPU_RESOURCE "nvidia.com/gpu"

/* The nvidia.com/gpu.product value of a Plinth GPU type id, or NULL when the
 * type is not in the table (then nodes are selected by plinth.io/gpu-type). */
const char *gpu_product_of_type(const char *gpu_type);

/* The Plinth GPU type id of an nvidia.com/gpu.product value, or NULL. */
const char *gpu_type_of_product(const char *product);

#endif
