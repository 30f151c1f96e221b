"""MNIST Lab's core: datasets, models, training, preprocessing and visualisation.

This package never imports Streamlit, and importing it does not import TensorFlow:
each module that needs TensorFlow imports it inside the functions that use it.
Importing it asks the TensorFlow imported later for oneDNN's CPU kernels
(`mnistlab.cpu_kernels`).
"""

from mnistlab.cpu_kernels import use_onednn

use_onednn()

__version__ = "0.1.0"
