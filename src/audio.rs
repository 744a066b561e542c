//! Audio input: WAV files decoded and resampled to the 16 kHz mono the models take.
