"""MNIST Lab's core: datasets, models, training, preprocessing and visualisation.

This package never imports Streamlit, and importing it does not import TensorFlow:
each module that needs TensorFlow imports it inside the functions that use it.
"""

__version__ = "0.1.0"
