//! PostHog-compatible wire formats (work in progress).
