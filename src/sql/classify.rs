//! What a parsed statement is: its command label, whether it can run inside a
//! transaction block, whether it controls the transaction, and whether COPY data follows.

use pg_query::protobuf::{
    AlterSubscriptionType, AlterTableType, DefElem, DiscardMode, ObjectType, ReindexObjectType,
    TransactionStmtKind,
};
use pg_query::NodeEnum;

use super::{StatementLabel, TxControl};

/// Why a statement cannot run inside a transaction block, or `None` if it can.
///
/// The list follows the callers of `PreventInTransactionBlock` in the PostgreSQL
/// server (PostgreSQL 18). Where the server decides from catalog state we cannot see
/// (DROP SUBSCRIPTION only with a slot, CLUSTER/REINDEX of a partitioned table), we say
/// non-transactional when the statement usually is, and stay silent when it usually
/// is not: running outside a transaction is always possible, the reverse is not.
pub fn non_transactional(ast: &NodeEnum) -> Option<StatementLabel> {
    match ast {
        NodeEnum::IndexStmt(s) if s.concurrent => Some("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(s) if s.concurrent && s.remove_type() == ObjectType::ObjectIndex => {
            Some("DROP INDEX CONCURRENTLY")
        }
        NodeEnum::ReindexStmt(s) => {
            if s.params
                .iter()
                .any(|p| def_named(p, "concurrently").is_some_and(def_bool))
            {
                return Some("REINDEX CONCURRENTLY");
            }
            match s.kind() {
                ReindexObjectType::ReindexObjectSchema => Some("REINDEX SCHEMA"),
                ReindexObjectType::ReindexObjectSystem => Some("REINDEX SYSTEM"),
                ReindexObjectType::ReindexObjectDatabase => Some("REINDEX DATABASE"),
                _ => None,
            }
        }
        // ANALYZE alone is allowed; VACUUM in any form (including VACUUM ANALYZE) is not.
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => Some("VACUUM"),
        NodeEnum::ClusterStmt(s) if s.relation.is_none() => Some("CLUSTER"),
        NodeEnum::CreatedbStmt(_) => Some("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => Some("DROP DATABASE"),
        NodeEnum::AlterDatabaseStmt(s)
            if s.options
                .iter()
                .any(|o| def_named(o, "tablespace").is_some()) =>
        {
            Some("ALTER DATABASE SET TABLESPACE")
        }
        NodeEnum::CreateTableSpaceStmt(_) => Some("CREATE TABLESPACE"),
        NodeEnum::DropTableSpaceStmt(_) => Some("DROP TABLESPACE"),
        NodeEnum::AlterSystemStmt(_) => Some("ALTER SYSTEM"),
        NodeEnum::AlterTableStmt(s) => s
            .cmds
            .iter()
            .any(|c| match &c.node {
                Some(NodeEnum::AlterTableCmd(cmd)) => {
                    cmd.subtype() == AlterTableType::AtDetachPartition
                        && matches!(cmd.def.as_deref().and_then(|d| d.node.as_ref()),
                                    Some(NodeEnum::PartitionCmd(pc)) if pc.concurrent)
                }
                _ => false,
            })
            .then_some("ALTER TABLE DETACH PARTITION CONCURRENTLY"),
        NodeEnum::CreateSubscriptionStmt(s) => {
            let opt = |name| {
                s.options
                    .iter()
                    .find_map(|o| def_named(o, name))
                    .map(def_bool)
            };
            // `connect = false` changes the default of `create_slot` to false.
            let create_slot = opt("create_slot").unwrap_or_else(|| opt("connect").unwrap_or(true));
            create_slot.then_some("CREATE SUBSCRIPTION")
        }
        NodeEnum::AlterSubscriptionStmt(s) => {
            let opt = |name| s.options.iter().find_map(|o| def_named(o, name));
            match s.kind() {
                AlterSubscriptionType::AlterSubscriptionRefresh => {
                    Some("ALTER SUBSCRIPTION REFRESH PUBLICATION")
                }
                AlterSubscriptionType::AlterSubscriptionSetPublication
                | AlterSubscriptionType::AlterSubscriptionAddPublication
                | AlterSubscriptionType::AlterSubscriptionDropPublication => opt("refresh")
                    .is_none_or(def_bool)
                    .then_some("ALTER SUBSCRIPTION PUBLICATION WITH REFRESH"),
                AlterSubscriptionType::AlterSubscriptionOptions
                    if opt("failover").is_some() || opt("two_phase").is_some() =>
                {
                    Some("ALTER SUBSCRIPTION SET (failover/two_phase)")
                }
                _ => None,
            }
        }
        // Whether the subscription still has a slot is catalog state; it usually does.
        NodeEnum::DropSubscriptionStmt(_) => Some("DROP SUBSCRIPTION"),
        NodeEnum::DiscardStmt(s) if s.target() == DiscardMode::DiscardAll => Some("DISCARD ALL"),
        NodeEnum::TransactionStmt(s) => match s.kind() {
            TransactionStmtKind::TransStmtCommitPrepared => Some("COMMIT PREPARED"),
            TransactionStmtKind::TransStmtRollbackPrepared => Some("ROLLBACK PREPARED"),
            _ => None,
        },
        _ => None,
    }
}

/// The transaction-control role of a statement, if it has one.
pub fn tx_control(ast: &NodeEnum) -> Option<TxControl> {
    let NodeEnum::TransactionStmt(s) = ast else {
        return None;
    };
    use TransactionStmtKind as K;
    Some(match s.kind() {
        K::TransStmtBegin | K::TransStmtStart => TxControl::Begin,
        K::TransStmtCommit if !s.chain => TxControl::Commit,
        K::TransStmtRollback if !s.chain => TxControl::Rollback,
        K::TransStmtSavepoint => TxControl::Savepoint,
        K::TransStmtRelease => TxControl::Release,
        K::TransStmtRollbackTo => TxControl::RollbackTo,
        _ => TxControl::Other,
    })
}

/// `COPY … FROM STDIN`: inline data follows the statement in the file.
pub fn is_copy_from_stdin(ast: &NodeEnum) -> bool {
    matches!(ast, NodeEnum::CopyStmt(c) if c.is_from && !c.is_program && c.filename.is_empty())
}

fn def_named<'a>(node: &'a pg_query::Node, name: &str) -> Option<&'a DefElem> {
    match &node.node {
        Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name) => Some(d),
        _ => None,
    }
}

/// A boolean option's value the way the server's `defGetBoolean` reads it: no value
/// means true; otherwise 0/1, true/false, on/off (any case). Unreadable values count
/// as true, which errs towards "non-transactional".
fn def_bool(d: &DefElem) -> bool {
    let Some(arg) = d.arg.as_deref().and_then(|a| a.node.as_ref()) else {
        return true;
    };
    let word = match arg {
        NodeEnum::Integer(i) => return i.ival != 0,
        NodeEnum::Boolean(b) => return b.boolval,
        NodeEnum::String(s) => s.sval.as_str(),
        // `= off` parses as a type name.
        NodeEnum::TypeName(t) => match t.names.last().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::String(s)) => s.sval.as_str(),
            _ => return true,
        },
        _ => return true,
    };
    !["false", "off", "no", "0"]
        .iter()
        .any(|f| word.eq_ignore_ascii_case(f))
}

/// Prefix + the SQL name of an object type, for labels such as "DROP TABLE".
macro_rules! by_object {
    ($prefix:literal, $ot:expr) => {
        match $ot {
            ObjectType::ObjectAccessMethod => concat!($prefix, " ACCESS METHOD"),
            ObjectType::ObjectAggregate => concat!($prefix, " AGGREGATE"),
            ObjectType::ObjectCast => concat!($prefix, " CAST"),
            ObjectType::ObjectColumn | ObjectType::ObjectAttribute => concat!($prefix, " COLUMN"),
            ObjectType::ObjectCollation => concat!($prefix, " COLLATION"),
            ObjectType::ObjectConversion => concat!($prefix, " CONVERSION"),
            ObjectType::ObjectDatabase => concat!($prefix, " DATABASE"),
            ObjectType::ObjectDomain | ObjectType::ObjectDomconstraint => {
                concat!($prefix, " DOMAIN")
            }
            ObjectType::ObjectEventTrigger => concat!($prefix, " EVENT TRIGGER"),
            ObjectType::ObjectExtension => concat!($prefix, " EXTENSION"),
            ObjectType::ObjectFdw => concat!($prefix, " FOREIGN DATA WRAPPER"),
            ObjectType::ObjectForeignServer => concat!($prefix, " SERVER"),
            ObjectType::ObjectForeignTable => concat!($prefix, " FOREIGN TABLE"),
            ObjectType::ObjectFunction => concat!($prefix, " FUNCTION"),
            ObjectType::ObjectIndex => concat!($prefix, " INDEX"),
            ObjectType::ObjectLanguage => concat!($prefix, " LANGUAGE"),
            ObjectType::ObjectLargeobject => concat!($prefix, " LARGE OBJECT"),
            ObjectType::ObjectMatview => concat!($prefix, " MATERIALIZED VIEW"),
            ObjectType::ObjectOpclass => concat!($prefix, " OPERATOR CLASS"),
            ObjectType::ObjectOperator => concat!($prefix, " OPERATOR"),
            ObjectType::ObjectOpfamily => concat!($prefix, " OPERATOR FAMILY"),
            ObjectType::ObjectPolicy => concat!($prefix, " POLICY"),
            ObjectType::ObjectProcedure => concat!($prefix, " PROCEDURE"),
            ObjectType::ObjectPublication
            | ObjectType::ObjectPublicationNamespace
            | ObjectType::ObjectPublicationRel => concat!($prefix, " PUBLICATION"),
            ObjectType::ObjectRole => concat!($prefix, " ROLE"),
            ObjectType::ObjectRoutine => concat!($prefix, " ROUTINE"),
            ObjectType::ObjectRule => concat!($prefix, " RULE"),
            ObjectType::ObjectSchema => concat!($prefix, " SCHEMA"),
            ObjectType::ObjectSequence => concat!($prefix, " SEQUENCE"),
            ObjectType::ObjectSubscription => concat!($prefix, " SUBSCRIPTION"),
            ObjectType::ObjectStatisticExt => concat!($prefix, " STATISTICS"),
            ObjectType::ObjectTabconstraint | ObjectType::ObjectTable => {
                concat!($prefix, " TABLE")
            }
            ObjectType::ObjectTablespace => concat!($prefix, " TABLESPACE"),
            ObjectType::ObjectTransform => concat!($prefix, " TRANSFORM"),
            ObjectType::ObjectTrigger => concat!($prefix, " TRIGGER"),
            ObjectType::ObjectTsconfiguration => concat!($prefix, " TEXT SEARCH CONFIGURATION"),
            ObjectType::ObjectTsdictionary => concat!($prefix, " TEXT SEARCH DICTIONARY"),
            ObjectType::ObjectTsparser => concat!($prefix, " TEXT SEARCH PARSER"),
            ObjectType::ObjectTstemplate => concat!($prefix, " TEXT SEARCH TEMPLATE"),
            ObjectType::ObjectType => concat!($prefix, " TYPE"),
            ObjectType::ObjectUserMapping => concat!($prefix, " USER MAPPING"),
            ObjectType::ObjectView => concat!($prefix, " VIEW"),
            _ => $prefix,
        }
    };
}

/// A short human label for any statement ("CREATE TABLE", "ALTER TABLE", "INSERT" …),
/// close to the server's command tag, for logs and messages.
pub fn statement_keyword(ast: &NodeEnum) -> &'static str {
    use NodeEnum as N;
    match ast {
        N::SelectStmt(s) if s.into_clause.is_some() => "SELECT INTO",
        N::SelectStmt(_) | N::SetOperationStmt(_) => "SELECT",
        N::InsertStmt(_) => "INSERT",
        N::UpdateStmt(_) => "UPDATE",
        N::DeleteStmt(_) => "DELETE",
        N::MergeStmt(_) => "MERGE",
        N::CreateStmt(_) => "CREATE TABLE",
        N::CreateForeignTableStmt(_) => "CREATE FOREIGN TABLE",
        N::CreateTableAsStmt(s) => match s.objtype() {
            ObjectType::ObjectMatview => "CREATE MATERIALIZED VIEW",
            _ if s.is_select_into => "SELECT INTO",
            _ => "CREATE TABLE AS",
        },
        N::AlterTableStmt(s) => by_object!("ALTER", s.objtype()),
        N::IndexStmt(s) if s.concurrent => "CREATE INDEX CONCURRENTLY",
        N::IndexStmt(_) => "CREATE INDEX",
        N::DropStmt(s) if s.concurrent => "DROP INDEX CONCURRENTLY",
        N::DropStmt(s) => by_object!("DROP", s.remove_type()),
        N::RenameStmt(s) => by_object!("ALTER", s.rename_type()),
        N::AlterObjectSchemaStmt(s) => by_object!("ALTER", s.object_type()),
        N::AlterOwnerStmt(s) => by_object!("ALTER", s.object_type()),
        N::AlterObjectDependsStmt(s) => by_object!("ALTER", s.object_type()),
        N::CommentStmt(_) => "COMMENT",
        N::SecLabelStmt(_) => "SECURITY LABEL",
        N::DefineStmt(s) => by_object!("CREATE", s.kind()),
        N::CreateSchemaStmt(_) => "CREATE SCHEMA",
        N::CreateSeqStmt(_) => "CREATE SEQUENCE",
        N::AlterSeqStmt(_) => "ALTER SEQUENCE",
        N::ViewStmt(_) => "CREATE VIEW",
        N::RefreshMatViewStmt(_) => "REFRESH MATERIALIZED VIEW",
        N::CreateFunctionStmt(s) if s.is_procedure => "CREATE PROCEDURE",
        N::CreateFunctionStmt(_) => "CREATE FUNCTION",
        N::AlterFunctionStmt(s) => by_object!("ALTER", s.objtype()),
        N::DoStmt(_) => "DO",
        N::CallStmt(_) => "CALL",
        N::CreateTrigStmt(_) => "CREATE TRIGGER",
        N::CreateEventTrigStmt(_) => "CREATE EVENT TRIGGER",
        N::AlterEventTrigStmt(_) => "ALTER EVENT TRIGGER",
        N::RuleStmt(_) => "CREATE RULE",
        N::CreatePolicyStmt(_) => "CREATE POLICY",
        N::AlterPolicyStmt(_) => "ALTER POLICY",
        N::CompositeTypeStmt(_) | N::CreateEnumStmt(_) | N::CreateRangeStmt(_) => "CREATE TYPE",
        N::AlterEnumStmt(_) | N::AlterTypeStmt(_) => "ALTER TYPE",
        N::CreateDomainStmt(_) => "CREATE DOMAIN",
        N::AlterDomainStmt(_) => "ALTER DOMAIN",
        N::CreateExtensionStmt(_) => "CREATE EXTENSION",
        N::AlterExtensionStmt(_) | N::AlterExtensionContentsStmt(_) => "ALTER EXTENSION",
        N::CreateFdwStmt(_) => "CREATE FOREIGN DATA WRAPPER",
        N::AlterFdwStmt(_) => "ALTER FOREIGN DATA WRAPPER",
        N::CreateForeignServerStmt(_) => "CREATE SERVER",
        N::AlterForeignServerStmt(_) => "ALTER SERVER",
        N::CreateUserMappingStmt(_) => "CREATE USER MAPPING",
        N::AlterUserMappingStmt(_) => "ALTER USER MAPPING",
        N::DropUserMappingStmt(_) => "DROP USER MAPPING",
        N::ImportForeignSchemaStmt(_) => "IMPORT FOREIGN SCHEMA",
        N::CreateAmStmt(_) => "CREATE ACCESS METHOD",
        N::CreatePlangStmt(_) => "CREATE LANGUAGE",
        N::CreateRoleStmt(_) => "CREATE ROLE",
        N::AlterRoleStmt(_) | N::AlterRoleSetStmt(_) => "ALTER ROLE",
        N::DropRoleStmt(_) => "DROP ROLE",
        N::GrantStmt(s) if s.is_grant => "GRANT",
        N::GrantStmt(_) => "REVOKE",
        N::GrantRoleStmt(s) if s.is_grant => "GRANT",
        N::GrantRoleStmt(_) => "REVOKE",
        N::AlterDefaultPrivilegesStmt(_) => "ALTER DEFAULT PRIVILEGES",
        N::CreateOpClassStmt(_) => "CREATE OPERATOR CLASS",
        N::CreateOpFamilyStmt(_) => "CREATE OPERATOR FAMILY",
        N::AlterOpFamilyStmt(_) => "ALTER OPERATOR FAMILY",
        N::AlterOperatorStmt(_) => "ALTER OPERATOR",
        N::AlterCollationStmt(_) => "ALTER COLLATION",
        N::CreateStatsStmt(_) => "CREATE STATISTICS",
        N::AlterStatsStmt(_) => "ALTER STATISTICS",
        N::CreateConversionStmt(_) => "CREATE CONVERSION",
        N::CreateCastStmt(_) => "CREATE CAST",
        N::CreateTransformStmt(_) => "CREATE TRANSFORM",
        N::AlterTsdictionaryStmt(_) => "ALTER TEXT SEARCH DICTIONARY",
        N::AlterTsconfigurationStmt(_) => "ALTER TEXT SEARCH CONFIGURATION",
        N::CreatePublicationStmt(_) => "CREATE PUBLICATION",
        N::AlterPublicationStmt(_) => "ALTER PUBLICATION",
        N::CreateSubscriptionStmt(_) => "CREATE SUBSCRIPTION",
        N::AlterSubscriptionStmt(_) => "ALTER SUBSCRIPTION",
        N::DropSubscriptionStmt(_) => "DROP SUBSCRIPTION",
        N::CreateTableSpaceStmt(_) => "CREATE TABLESPACE",
        N::DropTableSpaceStmt(_) => "DROP TABLESPACE",
        N::AlterTableSpaceOptionsStmt(_) => "ALTER TABLESPACE",
        N::AlterTableMoveAllStmt(_) => "ALTER TABLE",
        N::CreatedbStmt(_) => "CREATE DATABASE",
        N::AlterDatabaseStmt(_)
        | N::AlterDatabaseSetStmt(_)
        | N::AlterDatabaseRefreshCollStmt(_) => "ALTER DATABASE",
        N::DropdbStmt(_) => "DROP DATABASE",
        N::AlterSystemStmt(_) => "ALTER SYSTEM",
        N::ReplicaIdentityStmt(_) => "ALTER TABLE",
        N::TruncateStmt(_) => "TRUNCATE",
        N::CopyStmt(_) => "COPY",
        N::VariableSetStmt(_) => "SET",
        N::VariableShowStmt(_) => "SHOW",
        N::DiscardStmt(_) => "DISCARD",
        N::LockStmt(_) => "LOCK",
        N::ConstraintsSetStmt(_) => "SET CONSTRAINTS",
        N::ReindexStmt(_) => "REINDEX",
        N::VacuumStmt(s) if s.is_vacuumcmd => "VACUUM",
        N::VacuumStmt(_) => "ANALYZE",
        N::ClusterStmt(_) => "CLUSTER",
        N::CheckPointStmt(_) => "CHECKPOINT",
        N::ExplainStmt(_) => "EXPLAIN",
        N::LoadStmt(_) => "LOAD",
        N::NotifyStmt(_) => "NOTIFY",
        N::ListenStmt(_) => "LISTEN",
        N::UnlistenStmt(_) => "UNLISTEN",
        N::DeclareCursorStmt(_) => "DECLARE CURSOR",
        N::ClosePortalStmt(_) => "CLOSE CURSOR",
        N::FetchStmt(s) if s.ismove => "MOVE",
        N::FetchStmt(_) => "FETCH",
        N::PrepareStmt(_) => "PREPARE",
        N::ExecuteStmt(_) => "EXECUTE",
        N::DeallocateStmt(_) => "DEALLOCATE",
        N::DropOwnedStmt(_) => "DROP OWNED",
        N::ReassignOwnedStmt(_) => "REASSIGN OWNED",
        N::TransactionStmt(s) => {
            use TransactionStmtKind as K;
            match s.kind() {
                K::TransStmtBegin => "BEGIN",
                K::TransStmtStart => "START TRANSACTION",
                K::TransStmtCommit => "COMMIT",
                K::TransStmtRollback => "ROLLBACK",
                K::TransStmtSavepoint => "SAVEPOINT",
                K::TransStmtRelease => "RELEASE",
                K::TransStmtRollbackTo => "ROLLBACK TO SAVEPOINT",
                K::TransStmtPrepare => "PREPARE TRANSACTION",
                K::TransStmtCommitPrepared => "COMMIT PREPARED",
                K::TransStmtRollbackPrepared => "ROLLBACK PREPARED",
                K::Undefined => "TRANSACTION",
            }
        }
        _ => "STATEMENT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ast(sql: &str) -> NodeEnum {
        crate::sql::parse::parse_statement(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"))
    }

    #[test]
    fn non_transactional_statements() {
        let cases = [
            (
                "CREATE INDEX CONCURRENTLY i ON t (a)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "DROP INDEX CONCURRENTLY IF EXISTS i",
                "DROP INDEX CONCURRENTLY",
            ),
            ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
            ("REINDEX (CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY"),
            ("REINDEX SYSTEM", "REINDEX SYSTEM"),
            ("REINDEX DATABASE db", "REINDEX DATABASE"),
            ("REINDEX SCHEMA s", "REINDEX SCHEMA"),
            ("VACUUM", "VACUUM"),
            ("VACUUM (ANALYZE, VERBOSE) t", "VACUUM"),
            ("VACUUM FULL t", "VACUUM"),
            ("CLUSTER", "CLUSTER"),
            ("CREATE DATABASE d", "CREATE DATABASE"),
            ("DROP DATABASE IF EXISTS d WITH (FORCE)", "DROP DATABASE"),
            (
                "ALTER DATABASE d SET TABLESPACE ts",
                "ALTER DATABASE SET TABLESPACE",
            ),
            ("CREATE TABLESPACE ts LOCATION '/x'", "CREATE TABLESPACE"),
            ("DROP TABLESPACE ts", "DROP TABLESPACE"),
            ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
            ("ALTER SYSTEM RESET ALL", "ALTER SYSTEM"),
            (
                "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
                "ALTER TABLE DETACH PARTITION CONCURRENTLY",
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
                "CREATE SUBSCRIPTION",
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = true)",
                "CREATE SUBSCRIPTION",
            ),
            ("DROP SUBSCRIPTION IF EXISTS s", "DROP SUBSCRIPTION"),
            (
                "ALTER SUBSCRIPTION s REFRESH PUBLICATION",
                "ALTER SUBSCRIPTION REFRESH PUBLICATION",
            ),
            (
                "ALTER SUBSCRIPTION s REFRESH PUBLICATION WITH (copy_data = false)",
                "ALTER SUBSCRIPTION REFRESH PUBLICATION",
            ),
            (
                "ALTER SUBSCRIPTION s SET PUBLICATION p",
                "ALTER SUBSCRIPTION PUBLICATION WITH REFRESH",
            ),
            (
                "ALTER SUBSCRIPTION s ADD PUBLICATION p WITH (refresh = true)",
                "ALTER SUBSCRIPTION PUBLICATION WITH REFRESH",
            ),
            ("DISCARD ALL", "DISCARD ALL"),
            ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
            ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"),
        ];
        for (sql, label) in cases {
            assert_eq!(non_transactional(&ast(sql)), Some(label), "{sql}");
        }
    }

    #[test]
    fn transactional_statements() {
        for sql in [
            "CREATE INDEX i ON t (a)",
            "DROP INDEX i",
            "DROP TABLE t",
            "REINDEX TABLE t",
            "REINDEX INDEX i",
            "REINDEX (CONCURRENTLY false) TABLE t",
            "ANALYZE t",
            "CLUSTER t USING i",
            "ALTER DATABASE d SET work_mem = '1MB'",
            "ALTER DATABASE d OWNER TO r",
            "ALTER TABLE p DETACH PARTITION c",
            "ALTER TABLE p DETACH PARTITION c FINALIZE",
            "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = false)",
            "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = false)",
            "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = off)",
            "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)",
            "ALTER SUBSCRIPTION s DISABLE",
            "DISCARD PLANS",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY m",
            "ALTER TYPE e ADD VALUE 'x'",
            "BEGIN",
            "COMMIT",
        ] {
            assert_eq!(non_transactional(&ast(sql)), None, "{sql}");
        }
    }

    #[test]
    fn transaction_control() {
        use TxControl::*;
        let cases = [
            ("BEGIN", Some(Begin)),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", Some(Begin)),
            ("START TRANSACTION", Some(Begin)),
            ("COMMIT", Some(Commit)),
            ("END", Some(Commit)),
            ("COMMIT AND CHAIN", Some(Other)),
            ("ROLLBACK", Some(Rollback)),
            ("ABORT", Some(Rollback)),
            ("ROLLBACK AND CHAIN", Some(Other)),
            ("SAVEPOINT a", Some(Savepoint)),
            ("RELEASE SAVEPOINT a", Some(Release)),
            ("RELEASE a", Some(Release)),
            ("ROLLBACK TO SAVEPOINT a", Some(RollbackTo)),
            ("ROLLBACK TO a", Some(RollbackTo)),
            ("PREPARE TRANSACTION 'x'", Some(Other)),
            ("COMMIT PREPARED 'x'", Some(Other)),
            ("ROLLBACK PREPARED 'x'", Some(Other)),
            ("SELECT 1", None),
        ];
        for (sql, want) in cases {
            assert_eq!(tx_control(&ast(sql)), want, "{sql}");
        }
    }

    #[test]
    fn copy_from_stdin() {
        assert!(is_copy_from_stdin(&ast("COPY t FROM STDIN")));
        assert!(is_copy_from_stdin(&ast(
            "copy t (a) from stdin with (format csv, header)"
        )));
        assert!(!is_copy_from_stdin(&ast("COPY t FROM '/tmp/x'")));
        assert!(!is_copy_from_stdin(&ast("COPY t FROM PROGRAM 'cat'")));
        assert!(!is_copy_from_stdin(&ast("COPY t TO STDOUT")));
    }

    #[test]
    fn keywords() {
        let cases = [
            ("CREATE TABLE t (a int)", "CREATE TABLE"),
            ("ALTER TABLE t ADD COLUMN b int", "ALTER TABLE"),
            ("ALTER INDEX i SET TABLESPACE x", "ALTER INDEX"),
            ("ALTER TABLE t RENAME TO u", "ALTER TABLE"),
            ("ALTER VIEW v RENAME TO w", "ALTER VIEW"),
            ("DROP VIEW v", "DROP VIEW"),
            ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
            ("CREATE INDEX i ON t (a)", "CREATE INDEX"),
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("UPDATE t SET a = 1", "UPDATE"),
            ("DELETE FROM t", "DELETE"),
            ("SELECT 1 UNION SELECT 2", "SELECT"),
            (
                "CREATE MATERIALIZED VIEW m AS SELECT 1",
                "CREATE MATERIALIZED VIEW",
            ),
            ("CREATE TABLE t2 AS SELECT 1", "CREATE TABLE AS"),
            ("CREATE TYPE e AS ENUM ('a')", "CREATE TYPE"),
            (
                "CREATE AGGREGATE a (int) (sfunc = f, stype = int)",
                "CREATE AGGREGATE",
            ),
            (
                "CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'",
                "CREATE PROCEDURE",
            ),
            (
                "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "CREATE FUNCTION",
            ),
            ("ALTER FUNCTION f() OWNER TO r", "ALTER FUNCTION"),
            ("GRANT SELECT ON t TO r", "GRANT"),
            ("REVOKE SELECT ON t FROM r", "REVOKE"),
            ("SET search_path = public", "SET"),
            ("COMMENT ON TABLE t IS 'x'", "COMMENT"),
            ("VACUUM t", "VACUUM"),
            ("ANALYZE t", "ANALYZE"),
            ("COPY t FROM STDIN", "COPY"),
            ("DO $$BEGIN END$$", "DO"),
            ("START TRANSACTION", "START TRANSACTION"),
        ];
        for (sql, want) in cases {
            assert_eq!(statement_keyword(&ast(sql)), want, "{sql}");
        }
    }
}
