//! The revision summaries GetTile lists, kept in memory: a second watch
//! cache over `tiles/` whose values are [`RevisionRecord`]s, the few fields
//! of a stored tile a summary needs, decoded from the same bytes (protobuf
//! skips the others, so the configurations and raw documents of the
//! revisions are never held). Its watch covers the latest tiles' keys too
//! (it does not keep them), so its revision moves with every write to a
//! tile and GetTile can wait for it
//! to reach the tile it read from the tile cache (usually at once) without
//! making it relist.

use prost::Message;

/// The fields of a stored `Tile` (`tiles/<id>/rev/<n>`) a
/// `RevisionSummary` is made of; the tags are the `Tile` message's.
#[derive(Clone, PartialEq, Message)]
pub struct RevisionRecord {
    /// `Tile.revision`.
    #[prost(int64, tag = "4")]
    pub revision: i64,
    /// `Tile.maintenance` (its summary only).
    #[prost(message, optional, tag = "17")]
    pub maintenance: Option<MaintenanceNote>,
    /// `Tile.created_at`.
    #[prost(message, optional, tag = "19")]
    pub created_at: Option<prost_types::Timestamp>,
    /// `Tile.created_by`.
    #[prost(string, tag = "20")]
    pub created_by: String,
}

/// `MaintenanceInfo.summary`, the one field of it a summary shows.
#[derive(Clone, PartialEq, Message)]
pub struct MaintenanceNote {
    /// `MaintenanceInfo.summary`.
    #[prost(string, tag = "4")]
    pub summary: String,
}

#[cfg(test)]
mod tests {
    use tilewave_proto::registry::v1::{MaintenanceInfo, Tile};

    use super::*;

    #[test]
    fn a_record_decodes_the_summary_fields_of_a_stored_tile() {
        let tile = Tile {
            id: "riverflow".into(),
            name: "Riverflow".into(),
            revision: 3,
            raw_config: "{\"big\": \"document\"}".into(),
            maintenance: Some(MaintenanceInfo {
                summary: "adds GCP support".into(),
                affected_regions: vec!["gcp:us-central1".into()],
                ..Default::default()
            }),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 7,
            }),
            created_by: "ada".into(),
            updated_by: "bob".into(),
            ..Default::default()
        };
        let record = RevisionRecord::decode(tile.encode_to_vec().as_slice()).unwrap();
        assert_eq!(
            record,
            RevisionRecord {
                revision: 3,
                maintenance: Some(MaintenanceNote {
                    summary: "adds GCP support".into()
                }),
                created_at: tile.created_at,
                created_by: "ada".into(),
            }
        );
        assert!(record.encoded_len() < tile.encoded_len() / 2);
    }
}
