//! [`Records`]: the record types one topic carries, one type or a closed
//! set made with [`records!`](crate::records); and [`AnyRecord`], a record
//! of any type as JSON.

use crate::error::Result;
use crate::wire::codec::Encoders;
use crate::wire::record::Record;

/// The record types one topic carries, each written with its own schema.
///
/// Every [`Record`] is one: a topic of a single type. A closed set of types
/// is an enum made with [`records!`](crate::records), one variant per type.
/// Each record is then written as its own type's single-object encoding (its
/// own fingerprint) with that type's full name as `ce_type`, so a reader
/// tells the types apart without a union schema, outside readers (Python's
/// `fastavro`, `scribe tail`) read each record by its fingerprint, and a
/// subscriber binds a handler to each type it cares about
/// ([`Subscriptions::on`](crate::Subscriptions::on)).
///
/// There is nothing to implement by hand.
pub trait Records: Send + 'static {
    /// The schema of each type, in declaration order.
    fn schemas() -> Vec<apache_avro::Schema>;

    /// One encoder per type, in the order of [`Records::schemas`].
    fn encoders() -> Result<Encoders>;

    /// Appends the single-object encoding of `self` to `out`, with its own
    /// type's schema, and returns that type's index in
    /// [`Records::schemas`].
    fn encode(
        &self,
        encoders: &Encoders,
        out: &mut Vec<u8>,
    ) -> std::result::Result<usize, apache_avro::Error>;

    /// The record's type, when the value names it rather than its schema
    /// ([`AnyRecord`]); `None` (the default) takes the full name of the
    /// schema [`Records::encode`] used.
    fn record_type(&self) -> Option<&str> {
        None
    }
}

impl<T: Record> Records for T {
    fn schemas() -> Vec<apache_avro::Schema> {
        vec![T::get_schema()]
    }

    fn encoders() -> Result<Encoders> {
        let mut encoders = Encoders::new();
        encoders.push::<T>()?;
        Ok(encoders)
    }

    fn encode(
        &self,
        encoders: &Encoders,
        out: &mut Vec<u8>,
    ) -> std::result::Result<usize, apache_avro::Error> {
        encoders.encode::<T>(0, self, out)
    }
}

/// Declares an enum whose variants are the record types one actor writes
/// to its topic, and implements [`Records`] for it (with `From` for each
/// type), so that it can be a [`TopicActor::Output`](crate::TopicActor::Output).
///
/// Each variant holds one [`Record`] type; no two variants may hold types
/// of the same Avro full name (the node refuses such a set when it is
/// built).
///
/// ```
/// use apache_avro::AvroSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, AvroSchema)]
/// #[avro(namespace = "module.test")]
/// struct Started { run: String }
///
/// #[derive(Debug, Clone, Serialize, Deserialize, AvroSchema)]
/// #[avro(namespace = "module.test")]
/// struct Returned { run: String, passed: bool }
///
/// scribe::records! {
///     /// What a test run reports, in order, on one topic.
///     #[derive(Debug, Clone)]
///     pub enum TestEvent {
///         Started(Started),
///         Returned(Returned),
///     }
/// }
///
/// use scribe::Records;
/// let names: Vec<String> = TestEvent::schemas().iter().map(scribe::codec::full_name).collect();
/// assert_eq!(names, ["module.test.Started", "module.test.Returned"]);
/// let event: TestEvent = Returned { run: "r1".into(), passed: true }.into();
/// assert!(matches!(event, TestEvent::Returned(_)));
/// ```
#[macro_export]
macro_rules! records {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant($ty), )+
        }

        impl $crate::Records for $name {
            fn schemas() -> ::std::vec::Vec<$crate::__private::apache_avro::Schema> {
                ::std::vec![
                    $( <$ty as $crate::__private::apache_avro::AvroSchema>::get_schema(), )+
                ]
            }

            fn encoders() -> $crate::Result<$crate::codec::Encoders> {
                let mut encoders = $crate::codec::Encoders::new();
                $( encoders.push::<$ty>()?; )+
                ::std::result::Result::Ok(encoders)
            }

            #[allow(unused_assignments, irrefutable_let_patterns)]
            fn encode(
                &self,
                encoders: &$crate::codec::Encoders,
                out: &mut ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<usize, $crate::__private::apache_avro::Error> {
                let mut index = 0usize;
                $(
                    if let Self::$variant(value) = self {
                        return encoders.encode::<$ty>(index, value, out);
                    }
                    index += 1;
                )+
                ::std::unreachable!("every variant is matched above")
            }
        }

        $(
            impl ::std::convert::From<$ty> for $name {
                fn from(value: $ty) -> Self {
                    Self::$variant(value)
                }
            }
        )+
    };
}

/// A record of any type as JSON, with its type's name.
///
/// What a handler bound to a name prefix gets
/// ([`Subscriptions::on_prefix`](crate::Subscriptions::on_prefix)), read
/// with the writer's schema. As an actor's output it is written as JSON
/// text, not Avro, with `record_type` as `ce_type`: the standard
/// `json-out` actor mirrors an owned topic this way for readers outside
/// scribe. Readers in scribe take such a topic with
/// [`Subscriptions::subscribe_foreign`](crate::Subscriptions::subscribe_foreign);
/// `scribe check` refuses an Avro subscription to it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnyRecord {
    /// The Avro full name of its type (`module.test.Returned`).
    pub record_type: String,
    /// Its value, as JSON.
    pub value: serde_json::Value,
}

impl Records for AnyRecord {
    /// None: the values are JSON.
    fn schemas() -> Vec<apache_avro::Schema> {
        Vec::new()
    }

    fn encoders() -> Result<Encoders> {
        Ok(Encoders::new())
    }

    fn encode(
        &self,
        _: &Encoders,
        out: &mut Vec<u8>,
    ) -> std::result::Result<usize, apache_avro::Error> {
        // Writing a JSON value to memory cannot fail.
        serde_json::to_writer(&mut *out, &self.value).expect("a JSON value is written to memory");
        Ok(0)
    }

    fn record_type(&self) -> Option<&str> {
        Some(&self.record_type)
    }
}
