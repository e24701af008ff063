//! Server-side Table conversion (`Accept: application/json;as=Table;g=meta.k8s.io`):
//! kube-apiserver's columns per resource, with `row.object` as PartialObjectMetadata so
//! kubectl can print namespaces and labels (compat doc §5).

use everynode_api::table;
use serde_json::{Value, json};

use crate::resources::{ResourceInfo, Strategy};
use crate::strategy;

/// What `row.object` carries (`includeObject` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub fn column_definitions(res: &ResourceInfo) -> Vec<Value> {
    match table::columns(res.plural) {
        Some(cols) => cols
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "type": c.type_, "format": c.format,
                    "description": c.description, "priority": c.priority,
                })
            })
            .collect(),
        None => vec![
            json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
            json!({"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}),
        ],
    }
}

pub fn row(res: &ResourceInfo, obj: &Value, include: IncludeObject, now: jiff::Timestamp) -> Value {
    let cells = if table::columns(res.plural).is_some() {
        // The printers read the stored (core/v1) shape of events.
        if res.strategy == Strategy::EventV1 {
            table::row_cells(res.plural, &strategy::to_storage(res, obj.clone()), now)
        } else {
            table::row_cells(res.plural, obj, now)
        }
    } else {
        table::default_row_cells(obj)
    };
    let mut r = json!({ "cells": cells });
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => r["object"] = partial_metadata(obj),
        IncludeObject::Object => r["object"] = obj.clone(),
    }
    if res.strategy == Strategy::Pod
        && let Some(phase @ ("Succeeded" | "Failed")) =
            obj.pointer("/status/phase").and_then(Value::as_str)
    {
        r["conditions"] = json!([{ "type": "Completed", "status": "True", "reason": phase,
                                       "message": "The pod has completed successfully." }]);
    }
    r
}

/// A Table of `objs`; `columns` false for watch events after the first.
pub fn table(
    res: &ResourceInfo,
    objs: &[Value],
    metadata: Value,
    include: IncludeObject,
    columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": objs.iter().map(|o| row(res, o, include, now)).collect::<Vec<_>>(),
    });
    if columns {
        t["columnDefinitions"] = json!(column_definitions(res));
    }
    t
}
