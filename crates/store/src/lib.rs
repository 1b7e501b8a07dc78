//! Durable storage for Vexil (work in progress).
