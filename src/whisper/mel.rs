//! Log-mel spectrogram exactly as Whisper computes it.
