"""Datasets as uint8 tensors, and the loader that builds batches on the device.

    load_dataset("cifar100" | "synthetic" | "path.npz")  -> Dataset (x uint8 NHWC, y int64)
    DeviceLoader(x, y, ...)                               -> batches made where the model is
"""
from .cifar100 import DataUnavailableError, load_cifar100
from .arrays import CIFAR100_MEAN, CIFAR100_STD, Dataset, DatasetFormatError, load_npz
from .datasets import check_overlap, load_dataset, make_synthetic
from .loader import DeviceLoader, bilinear_matrix
from .subsets import nested_fraction, train_sample, with_train_fraction

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "Dataset", "DatasetFormatError",
           "DataUnavailableError", "DeviceLoader", "bilinear_matrix",
           "check_overlap", "load_cifar100", "load_dataset", "load_npz", "make_synthetic",
           "nested_fraction", "train_sample", "with_train_fraction"]
