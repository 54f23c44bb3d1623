"""The networks: DFCAN, DFGAN, Fourier channel attention, the matmul DFT, and weight files."""
