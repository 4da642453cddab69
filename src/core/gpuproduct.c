/*
 * gpuproduct.c - the table from Plinth GPU type ids to GPU Feature
 * Discovery's nvidia.com/gpu.product values.  One entry per type, one product
 * per type and one type per product, so both directions are exact.  Pure.
 */
#include "core/gpuproduct.h"

#include <stddef.h>
#include <string.h>

static const struct {
	const char *id;
	const char *product; /* GPU Feature Discovery's nvidia.com/gpu.product */
} gpu_products[] = {
	{"h100-80gb", "NVIDIA-H100-80GB-HBM3"},
	{"h200-141gb", "NVIDIA-H200"},
	{"a100-40gb", "NVIDIA-A100-SXM4-40GB"},
	{"a100-80gb", "NVIDIA-A100-SXM4-80GB"},
	{"v100-16gb", "Tesla-V100-SXM2-16GB"},
	{"v100-32gb", "Tesla-V100-SXM2-32GB"},
	{"a10g-24gb", "NVIDIA-A10G"},
	{"l4-24gb", "NVIDIA-L4"},
	{"l40s-48gb", "NVIDIA-L40S"},
	{"t4-16gb", "Tesla-T4"},
};

#define NPRODUCTS (sizeof(gpu_products) / sizeof(gpu_products[0]))

const char *gpu_product_of_type(const char *gpu_type)
{
	for (size_t i = 0; gpu_type != NULL && i < NPRODUCTS; i++)
		if (strcmp(gpu_products[i].id, gpu_type) == 0)
			return gpu_products[i].product;
	return NULL;
}

const char *gpu_type_of_product(const char *product)
{
	for (size_t i = 0; product != NULL && i < NPRODUCTS; i++)
		if (strcmp(gpu_products[i].product, product) == 0)
			return gpu_products[i].id;
	return NULL;
}
