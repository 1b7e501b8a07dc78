//! `TestApp`: spawns the real server (`vexil_server::serve`) on port 0 over a temporary SQLite
//! file, with one project created, and offers a reqwest client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;
use vexil_server::{AppState, Settings};
use vexil_store::{CreatedProject, Store};

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub project: CreatedProject,
    pub state: AppState,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Settings::default()).await
    }

    pub async fn spawn_with(settings: Settings) -> TestApp {
        Self::spawn_wrapped(settings, |store| store).await
    }

    /// Spawns the app over `wrap(store)` (e.g. a `FaultyStore`); `self.store` is the wrapper.
    pub async fn spawn_wrapped(
        settings: Settings,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> TestApp {
        Self::spawn_in(tempfile::tempdir().unwrap(), settings, wrap).await
    }

    /// The app over `wrap(store)` with the store in `dir` (e.g. on a small file system).
    pub async fn spawn_in(
        dir: tempfile::TempDir,
        settings: Settings,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> TestApp {
        let store = wrap(vexil_store::open_data_dir(dir.path()).await.unwrap());
        let project = store.create_project("Test project").await.unwrap();
        Self::serve(dir, store, project, settings).await
    }

    /// A new app over a data directory an earlier one left ([`TestApp::stop_keeping_data`]),
    /// serving that app's `project` (a restart).
    #[allow(dead_code)]
    pub async fn respawn(
        dir: tempfile::TempDir,
        project: CreatedProject,
        settings: Settings,
    ) -> TestApp {
        let store = vexil_store::open_data_dir(dir.path()).await.unwrap();
        Self::serve(dir, store, project, settings).await
    }

    /// Serves `project` of `store` (living in `dir`) on a fresh port.
    async fn serve(
        dir: tempfile::TempDir,
        store: Arc<dyn Store>,
        project: CreatedProject,
        settings: Settings,
    ) -> TestApp {
        let state = AppState::new(Arc::clone(&store), settings).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(vexil_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            client: reqwest::Client::new(),
            store,
            project,
            state,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The data directory the store lives in (removed when the app is dropped).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn token(&self) -> &str {
        &self.project.project.api_token
    }

    pub fn personal_key(&self) -> &str {
        &self.project.personal_key
    }

    /// POST JSON to `path`; returns (status, body as JSON or Null).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Experience continuity's setup: an anonymous distinct id whose `value` of the
    /// `/flags?v=2` answer differs from `identified`'s, stored as a person and then identified
    /// as `identified`. Returns the anonymous id and its value.
    pub async fn identify_from_another_bucket(
        &self,
        identified: &str,
        value: impl Fn(&Value) -> Value,
    ) -> (String, Value) {
        let project = self.project.project.id;
        let flags = |id: String| {
            let body = serde_json::json!({"token": self.token(), "distinct_id": id});
            async move { self.post("/flags?v=2", &body).await.1 }
        };
        let own = value(&flags(identified.to_owned()).await);
        let mut anon = None;
        for i in 0..200 {
            let id = format!("anon-{i}");
            let theirs = value(&flags(id.clone()).await);
            if theirs != own {
                anon = Some((id, theirs));
                break;
            }
        }
        let (anon, anon_value) = anon.expect("some anonymous id lands in another bucket");
        self.store
            .apply_person_update(project, &anon, &vexil_store::PersonUpdate::default())
            .await
            .unwrap();
        self.store
            .identify(project, identified, &anon)
            .await
            .unwrap();
        (anon, anon_value)
    }

    /// POST raw bytes with the given headers; returns (status, body as JSON or Null).
    pub async fn post_bytes(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Management API call with the project's personal key.
    #[allow(dead_code)]
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(self.personal_key());
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Stores a flag directly (bypassing the management API) and refreshes the snapshot.
    pub async fn put_flag(&self, key: &str, filters: Value) -> i64 {
        let flag = vexil_store::NewFlag::new(key, filters);
        let id = self
            .store
            .create_flag(self.project.project.id, &flag)
            .await
            .unwrap()
            .id;
        self.state
            .catalog
            .refresh(self.store.as_ref(), self.project.project.id)
            .await
            .unwrap();
        id
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    /// Stops the server gracefully (which flushes the capture pipeline), closes the store and
    /// hands back the data directory, still on disk, so a test can reopen it.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        self.shutdown().await;
        self.store.close().await;
        self.dir
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}
