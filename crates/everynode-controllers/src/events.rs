//! Recording core/v1 Events the way Kubernetes' controllers do (`kubectl describe` and
//! `kubectl get events` show them). Failures to record are logged, never fatal.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Resource;
use kube::api::{Api, PostParams};
use serde_json::json;

/// Records events on behalf of one component (`daemonset-controller`, `default-scheduler`).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: &'static str,
}

impl Recorder {
    pub fn new(client: kube::Client, component: &'static str) -> Recorder {
        Recorder { client, component }
    }

    /// Records an event about `obj` (any namespaced or cluster-scoped object).
    pub async fn record<K>(&self, obj: &K, type_: &str, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let meta = obj.meta();
        let ns = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "generateName": format!("{name}."), "namespace": ns },
            "involvedObject": {
                "apiVersion": K::api_version(&()), "kind": K::kind(&()), "name": name,
                "namespace": meta.namespace, "uid": meta.uid, "resourceVersion": meta.resource_version,
            },
            "reason": reason, "message": message, "type": type_,
            "source": { "component": self.component },
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": "",
        });
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let result = match serde_json::from_value::<Event>(event) {
            Ok(ev) => api.create(&PostParams::default(), &ev).await.map(|_| ()),
            Err(e) => Err(kube::Error::SerdeError(e)),
        };
        if let Err(e) = result {
            tracing::debug!(component = self.component, %reason, error = %e, "recording an event");
        }
    }

    pub async fn pod(&self, pod: &Pod, type_: &str, reason: &str, message: &str) {
        self.record(pod, type_, reason, message).await
    }
}
