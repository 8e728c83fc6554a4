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
        // Records keyed `text` go to this partition; a store keyed as its
        // records are keeps the key's state there.
        let expected = self
            .partitions
            .filter(|n| *n > 0)
            .map(|n| partition_for_key(text.as_bytes(), n));
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
        let mut keys = Vec::with_capacity(asked.len());
        for &index in &asked {
            match (stores.specs()[index].json.key)(text) {
                Ok(key) => keys.push((index, key)),
                Err(reason) => {
                    return StateAnswer::Refused(format!(
                        "store `{}`: {reason}",
                        stores.specs()[index].info.name
                    ));
                }
            }
        }
        let held = stores.held();
        // The key's own partition, when held here; else any held partition
        // where one of the stores has the key (state keyed otherwise than
        // its records).
        let partition = expected.filter(|p| held.contains(p)).or_else(|| {
            held.iter().copied().find(|p| {
                keys.iter()
                    .any(|(index, key)| matches!(stores.peek(*index, *p, key), Ok(Some(_))))
            })
        });
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
