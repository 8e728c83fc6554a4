//! Unit tests of [`Stores`](super::Stores).

use super::*;

fn spec(name: &str) -> StoreSpec {
    StoreSpec {
        clock: None,
        info: StoreInfo {
            name: name.into(),
            changelog: format!("out.{name}.changelog"),
            key_type: "string".into(),
            key_schema: apache_avro::Schema::String,
            value_type: "long".into(),
            value_schema: apache_avro::Schema::Long,
        },
        check: Arc::new(|_| Ok(())),
        json: Arc::new(
            crate::state::json::store_json::<String, i64>(&SchemaRegistry::new()).unwrap(),
        ),
    }
}

fn stores(transactional: bool) -> Stores {
    let stores = Stores::new(
        "counter".into(),
        vec![spec("a"), spec("b")],
        SchemaRegistry::new(),
        transactional,
    );
    stores.install(0, vec![Shard::default(), Shard::default()]);
    stores
}

fn at(offset: i64) -> Position {
    Position::new("in".into(), 0, offset)
}

fn value(v: u8) -> Change {
    Some(Arc::from(&[v][..]))
}

type Sent = Vec<(String, i32, Vec<u8>, Option<Vec<u8>>, String)>;

fn sender(sent: &mut Sent) -> impl FnMut(Outgoing<'_>) -> Result<()> + '_ {
    |c| {
        sent.push((
            c.topic.into(),
            c.partition,
            c.key.to_vec(),
            c.value.map(<[u8]>::to_vec),
            c.input.into(),
        ));
        Ok(())
    }
}

#[test]
fn changes_take_effect_when_the_handler_returns_ok() {
    let stores = stores(false);
    stores.begin(&at(7));
    stores.set(0, b"k".to_vec(), value(1)).unwrap();
    stores.set(1, b"j".to_vec(), value(2)).unwrap();
    stores.set(1, b"j".to_vec(), None).unwrap();
    assert_eq!(stores.get(0, b"k").unwrap(), value(1), "its own change");
    assert_eq!(stores.peek(0, 0, b"k"), Ok(None), "not yet the shard's");
    let mut sent = Sent::new();
    stores.finish(sender(&mut sent)).unwrap();
    assert_eq!(
        sent,
        vec![
            (
                "out.a.changelog".into(),
                0,
                b"k".to_vec(),
                Some(vec![1]),
                "in/0/7".into()
            ),
            (
                "out.b.changelog".into(),
                0,
                b"j".to_vec(),
                None,
                "in/0/7".into()
            ),
        ],
        "one change per key, the last one"
    );
    assert_eq!(stores.peek(0, 0, b"k"), Ok(value(1)));
    assert!(stores.get(0, b"k").is_err(), "no record is handled now");
}

#[test]
fn a_failed_handler_changes_nothing() {
    let stores = stores(false);
    stores.begin(&at(1));
    stores.set(0, b"k".to_vec(), value(1)).unwrap();
    stores.discard();
    stores.begin(&at(1));
    assert_eq!(stores.get(0, b"k").unwrap(), None);
    let mut sent = Sent::new();
    stores.finish(sender(&mut sent)).unwrap();
    assert!(sent.is_empty());
}

#[test]
fn a_refused_send_leaves_the_shard_as_it_was() {
    let stores = stores(false);
    stores.begin(&at(1));
    stores.set(0, b"k".to_vec(), value(1)).unwrap();
    let refused = stores.finish(|_| {
        Err(Error::State {
            actor: "counter".into(),
            store: "a".into(),
            reason: "queue full".into(),
        })
    });
    assert!(refused.is_err());
    assert_eq!(stores.peek(0, 0, b"k"), Ok(None));
}

#[test]
fn under_exactly_once_only_committed_changes_survive_an_abort() {
    let stores = stores(true);
    let mut sent = Sent::new();
    stores.begin(&at(1));
    stores.set(0, b"k".to_vec(), value(1)).unwrap();
    stores.finish(sender(&mut sent)).unwrap();
    stores.committed();
    stores.begin(&at(2));
    stores.set(0, b"k".to_vec(), value(2)).unwrap();
    stores.set(0, b"new".to_vec(), value(3)).unwrap();
    stores.finish(sender(&mut sent)).unwrap();
    stores.begin(&at(3));
    assert_eq!(
        stores.get(0, b"k").unwrap(),
        value(2),
        "the open transaction's"
    );
    assert_eq!(
        stores.peek(0, 0, b"k"),
        Ok(value(1)),
        "outside: what committed"
    );
    stores.discard();
    stores.aborted();
    stores.begin(&at(2));
    assert_eq!(stores.get(0, b"k").unwrap(), value(1));
    assert_eq!(stores.get(0, b"new").unwrap(), None);
}

#[test]
fn a_scan_sees_the_shard_with_the_records_changes() {
    let stores = stores(true);
    let mut sent = Sent::new();
    stores.begin(&at(1));
    for k in [b"a", b"b", b"c"] {
        stores.set(0, k.to_vec(), value(k[0])).unwrap();
    }
    stores.finish(sender(&mut sent)).unwrap();
    stores.committed();
    stores.begin(&at(2));
    stores.set(0, b"b".to_vec(), None).unwrap();
    stores.finish(sender(&mut sent)).unwrap();
    stores.begin(&at(3));
    stores.set(0, b"d".to_vec(), value(9)).unwrap();
    let keys: Vec<Vec<u8>> = stores
        .scan(0)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]);
}

#[test]
fn a_partition_not_held_is_refused_naming_it() {
    let stores = stores(false);
    stores.begin(&Position::new("in".into(), 5, 10));
    let error = stores.get(0, b"k").unwrap_err().to_string();
    assert_eq!(
        error,
        "actor `counter`, store `a`: partition 5 is not restored on this instance (record in/5@10)"
    );
    assert!(stores.release(0));
    assert!(stores.held().is_empty());
}
