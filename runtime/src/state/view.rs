//! Reading an instance's state from outside the actor, as JSON: what the
//! admin endpoint's `GET /actors/NAME/state/KEY` answers ([`StateView`]),
//! each store's keys read and values written as its `json` says.

// Read by the admin endpoint only.
#![cfg_attr(not(feature = "admin"), allow(dead_code))]

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use super::stores::Stores;
use crate::kafka::partitioner::partition_for_key;
use crate::ops::state_query::{StateAnswer, StateQuery};

/// The state of one instance, as the admin endpoint reads it. It holds
/// the instance's stores weakly: once the instance is gone, it holds no
/// partition.
#[derive(Debug)]
pub(crate) struct StateView {
    stores: Weak<Stores>,
    /// The partition count of the actor's input, when known (on Kafka).
    partitions: Option<i32>,
}

impl StateView {
    /// The view of `stores`, whose actor reads topics of `partitions`
    /// partitions (when known).
    pub(crate) fn new(stores: &Arc<Stores>, partitions: Option<i32>) -> Self {
        Self {
            stores: Arc::downgrade(stores),
            partitions,
        }
    }
}

impl StateQuery for StateView {
    fn query(&self, text: &str, store: Option<&str>) -> StateAnswer {
        // Records keyed `text` (or the string it quotes) go to this
        // partition; a store keyed as its records are keeps the key's
        // state there.
        let record_key = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::String(quoted)) => quoted,
            _ => text.to_owned(),
        };
        let expected = self
            .partitions
            .filter(|n| *n > 0)
            .map(|n| partition_for_key(record_key.as_bytes(), n));
        let Some(stores) = self.stores.upgrade() else {
            return StateAnswer::NotHeld {
                partition: expected,
                held: Vec::new(),
            };
        };
        let asked: Vec<usize> = match store {
            Some(name) => match stores.index_of(name) {
                Some(index) => vec![index],
                None => {
                    let names: Vec<&str> = stores
                        .specs()
                        .iter()
                        .map(|s| s.info.name.as_str())
                        .collect();
                    return StateAnswer::Refused(format!(
                        "actor `{}` has no store `{name}` (its stores: {})",
                        stores.actor(),
                        names.join(", ")
                    ));
                }
            },
            None => (0..stores.specs().len()).collect(),
        };
        // The key in each store asked whose key type takes it: a store
        // named must; of all, those that do answer.
        let mut keys = Vec::with_capacity(asked.len());
        let mut refusals = Vec::new();
        for &index in &asked {
            let info = &stores.specs()[index].info;
            match (stores.specs()[index].json.key)(text) {
                Ok(key) => keys.push((index, key)),
                Err(reason) => refusals.push(format!(
                    "`{text}` is not a key of store `{}` (its keys are `{}`): {reason}",
                    info.name, info.key_type
                )),
            }
        }
        if keys.is_empty() || (store.is_some() && !refusals.is_empty()) {
            return StateAnswer::Refused(refusals.join("; "));
        }
        let held = stores.held();
        // Where a store has the key: its records' partition first, then
        // any other held (state keyed otherwise than its records); else,
        // when held here, its records' partition, where it has no value.
        let has_key = |p: i32| {
            keys.iter()
                .any(|(index, key)| matches!(stores.peek(*index, p, key), Ok(Some(_))))
        };
        let partition = expected
            .filter(|p| held.contains(p) && has_key(*p))
            .or_else(|| held.iter().copied().find(|p| has_key(*p)))
            .or_else(|| expected.filter(|p| held.contains(p)));
        let Some(partition) = partition else {
            return StateAnswer::NotHeld {
                partition: expected,
                held,
            };
        };
        let mut values = BTreeMap::new();
        for (index, key) in &keys {
            let spec = &stores.specs()[*index];
            let value = match stores.peek(*index, partition, key) {
                Ok(Some(bytes)) => match (spec.json.value)(&bytes) {
                    Ok(value) => Some(value),
                    Err(reason) => {
                        return StateAnswer::Refused(format!(
                            "store `{}`, partition {partition}: {reason}",
                            spec.info.name
                        ));
                    }
                },
                // Released since `held` was read: say so.
                Err(()) => {
                    return StateAnswer::NotHeld {
                        partition: expected,
                        held: stores.held(),
                    };
                }
                Ok(None) => None,
            };
            values.insert(spec.info.name.clone(), value);
        }
        StateAnswer::Held { partition, values }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::state::StoreInfo;
    use crate::state::json::store_json;
    use crate::state::stores::{Shard, StoreSpec};
    use crate::wire::codec::{Encoder, SINGLE_OBJECT_HEADER_LEN, SchemaRegistry};
    use crate::wire::record::Record;

    fn spec<K: Record, V: Record>(name: &str, key_type: &str) -> StoreSpec {
        let (key_schema, value_schema) = (K::get_schema(), V::get_schema());
        StoreSpec {
            info: StoreInfo {
                name: name.into(),
                changelog: format!("out.{name}.changelog"),
                key_type: key_type.into(),
                key_schema,
                value_type: "value".into(),
                value_schema,
            },
            check: Arc::new(|_| Ok(())),
            clock: None,
            json: Arc::new(store_json::<K, V>(&SchemaRegistry::new()).unwrap()),
        }
    }

    fn key<K: Record>(key: &K) -> Vec<u8> {
        let mut bytes = Vec::new();
        Encoder::<K>::new()
            .unwrap()
            .encode(key, &mut bytes)
            .unwrap();
        bytes.split_off(SINGLE_OBJECT_HEADER_LEN)
    }

    fn value<V: Record>(value: &V) -> Arc<[u8]> {
        let mut bytes = Vec::new();
        Encoder::<V>::new()
            .unwrap()
            .encode(value, &mut bytes)
            .unwrap();
        Arc::from(bytes)
    }

    /// Counts by host (string keys) and sizes by id (long keys), four
    /// input partitions, of which this instance holds `held`.
    fn stores(held: &[i32], count_of_web1: i64) -> Arc<Stores> {
        let stores = Arc::new(Stores::new(
            "counter".into(),
            vec![
                spec::<String, i64>("counts", "string"),
                spec::<i64, String>("sizes", "long"),
            ],
            SchemaRegistry::new(),
            false,
        ));
        for &partition in held {
            let mut counts = BTreeMap::new();
            if partition == partition_for_key(b"web-1", 4) {
                counts.insert(key(&"web-1".to_owned()), value(&count_of_web1));
            }
            let mut sizes = BTreeMap::new();
            sizes.insert(key(&(42 + i64::from(partition))), value(&"big".to_owned()));
            stores.install(partition, vec![Shard::of(counts), Shard::of(sizes)]);
        }
        stores
    }

    #[test]
    fn a_key_of_a_held_partition_is_answered_with_its_value_in_each_store() {
        let stores = stores(&[0, 1, 2, 3], 5);
        let view = StateView::new(&stores, Some(4));
        let web1 = partition_for_key(b"web-1", 4);
        let answer = view.query("web-1", Some("counts"));
        let mut values = BTreeMap::new();
        values.insert("counts".to_owned(), Some(serde_json::json!(5)));
        assert_eq!(
            answer,
            StateAnswer::Held {
                partition: web1,
                values
            }
        );
        // Quoted, the key is the same string.
        assert_eq!(view.query("\"web-1\"", Some("counts")), answer);
        // A long key, looked for in the partitions held.
        match view.query("43", Some("sizes")) {
            StateAnswer::Held { partition, values } => {
                assert_eq!(partition, 1);
                assert_eq!(values["sizes"], Some(serde_json::json!("big")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_key_of_a_partition_not_held_names_its_partition() {
        let web1 = partition_for_key(b"web-1", 4);
        let others: Vec<i32> = (0..4).filter(|p| *p != web1).collect();
        let stores = stores(&others, 5);
        let view = StateView::new(&stores, Some(4));
        assert_eq!(
            view.query("web-1", None),
            StateAnswer::NotHeld {
                partition: Some(web1),
                held: others,
            }
        );
        drop(stores);
        assert_eq!(
            view.query("web-1", None),
            StateAnswer::NotHeld {
                partition: Some(web1),
                held: Vec::new(),
            },
            "the instance is gone"
        );
    }

    #[test]
    fn an_unknown_store_or_a_key_of_another_type_is_refused() {
        let stores = stores(&[0, 1, 2, 3], 5);
        let view = StateView::new(&stores, Some(4));
        let StateAnswer::Refused(reason) = view.query("web-1", Some("nope")) else {
            panic!("refused");
        };
        assert_eq!(
            reason,
            "actor `counter` has no store `nope` (its stores: counts, sizes)"
        );
        let StateAnswer::Refused(reason) = view.query("web-1", Some("sizes")) else {
            panic!("refused");
        };
        assert!(
            reason.starts_with("`web-1` is not a key of store `sizes` (its keys are `long`): "),
            "{reason}"
        );
    }
}
