//! What the issue-10 benchmarks share: a request body of one chunk, and the projects they
//! push into.

use berth_core::blobstore::{BodyError, ByteStream};
use berth_core::quota::STORAGE_LIMIT;
use berth_core::store::identity::{IdentityStore, NewProject, NewUser, Project};
use bytes::Bytes;

/// `b` as an upload body.
pub fn body(b: Bytes) -> ByteStream {
    struct Once(Option<Bytes>);
    impl futures_core::Stream for Once {
        type Item = Result<Bytes, BodyError>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.take().map(Ok))
        }
    }
    Box::pin(Once(Some(b)))
}

/// Creates the projects `(name, storage limit)`, owned by a new `bench` user.
pub async fn projects(store: &dyn IdentityStore, specs: &[(&str, Option<i64>)]) -> Vec<Project> {
    let owner = store
        .create_user(&NewUser {
            username: "bench".into(),
            email: "bench@example.com".into(),
            realname: "Bench".into(),
            comment: String::new(),
            password: "x".into(),
            salt: "x".into(),
            password_version: "sha256".into(),
            sysadmin: true,
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for (name, limit) in specs {
        let metadata = limit.map(|l| (STORAGE_LIMIT.to_string(), l.to_string())).into_iter().collect();
        out.push(
            store.create_project(&NewProject { name: (*name).into(), owner_id: owner.id, metadata }).await.unwrap(),
        );
    }
    out
}
