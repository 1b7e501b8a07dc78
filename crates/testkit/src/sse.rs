//! A server-sent-events reader: one open stream parsed as the SSE spec says (`event`, `id` and
//! `data` fields; comment lines recorded and skipped; a blank line ends an event).

use std::time::Duration;

use serde_json::Value;

/// One server-sent event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `event:` (`message` when absent).
    pub event: String,
    /// `id:`, when sent.
    pub id: Option<String>,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

impl Event {
    /// `data` as JSON; panics when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("the event's data is JSON")
    }
}

/// An open stream.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines seen so far (`: heartbeat` → `heartbeat`).
    pub comments: Vec<String>,
}

impl Sse {
    /// `GET url` with `headers`; the response must be a 200 event stream.
    pub async fn open(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Sse {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{url}"
        );
        Sse {
            response,
            buffer: String::new(),
            comments: Vec::new(),
        }
    }

    /// The response's headers.
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        self.response.headers()
    }

    /// Reads until the server ends the stream (or the connection fails).
    pub async fn until_closed(&mut self) {
        while let Some(_chunk) = self.response.chunk().await.ok().flatten() {}
    }

    /// The next event, waiting at most 20 s.
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(20), self.read())
            .await
            .expect("no event within 20 s")
    }

    /// The next event if one arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> Option<Event> {
        tokio::time::timeout(wait, self.read()).await.ok()
    }

    async fn read(&mut self) -> Event {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse(&block) {
                    return event;
                }
                continue;
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("the stream reads")
                .expect("the stream ended");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("the stream is UTF-8"));
        }
    }

    /// One block's event; `None` for a block without data (comments only).
    fn parse(&mut self, block: &str) -> Option<Event> {
        let mut event = Event {
            event: "message".into(),
            id: None,
            data: String::new(),
        };
        let mut has_data = false;
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                self.comments.push(comment.trim().to_owned());
            } else if let Some((field, value)) = line.split_once(": ") {
                match field {
                    "event" => event.event = value.to_owned(),
                    "id" => event.id = Some(value.to_owned()),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
        }
        has_data.then_some(event)
    }
}
