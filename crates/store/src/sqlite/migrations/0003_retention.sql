-- Retention: old events and flag calls are deleted in small chunks by time, oldest first.
CREATE INDEX events_timestamp ON events (timestamp);
CREATE INDEX flag_calls_at ON flag_calls (at);
