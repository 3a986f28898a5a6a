"""The CNNs: AlexNet-layout Φ and CNN-F (DVBPR)."""
