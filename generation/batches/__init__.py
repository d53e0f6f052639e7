"""Provider batch APIs ("overnight, half price"): submit a run's requests as one provider batch, store
its id before polling, poll it, and stream its results into the run's scenes."""
