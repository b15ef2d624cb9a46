"""Names of the models magnet-st knows without a path: torch-free, so that the command line can show them."""

DEFAULT_BASE_MODEL = "smollm2-135m"  # the embedded base (magnet_st.base_models.EMBEDDED_MODELS)
REFERENCE_MODEL = "magnet-smollm2-135m"  # the shipped MAGNET model (magnet_st.pretrained.PRETRAINED_MODELS)
