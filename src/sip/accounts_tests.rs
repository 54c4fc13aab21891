//! Several accounts at once, on simulated time.
