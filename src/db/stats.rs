//! Table sizes for the linter's live context. The SQL text of it is here.

use super::Db;

/// What the catalog says about one table, by the name it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    /// The name as asked (`events`, `app.events`).
    pub name: String,
    /// False when the name resolves to no relation.
    pub exists: bool,
    /// `pg_class.reltuples`: an estimate, -1 when the table was never analyzed.
    pub rows_estimate: i64,
    /// `pg_total_relation_size`: heap, indexes and TOAST.
    pub total_bytes: i64,
}

/// Size and row estimate of each of `names`, in one query.
///
/// Names are resolved with `to_regclass`, the way the server resolves them in a
/// statement: through `search_path` when unqualified, so `public.x` and `x` both work,
/// and a table that does not exist gives NULL rather than an error. `to_regclass` still
/// rejects malformed names, so each part is quoted here (the names come from the parse
/// tree, already case-folded) and names of more than two parts come back as not existing.
pub fn table_sizes(db: &mut Db, names: &[String]) -> Result<Vec<TableSize>, tokio_postgres::Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let well_formed: Vec<String> = names
        .iter()
        .filter(|n| !n.is_empty() && n.split('.').count() <= 2)
        .cloned()
        .collect();
    let quoted: Vec<String> = well_formed
        .iter()
        .map(|n| {
            n.split('.')
                .map(super::quote_ident)
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect();
    let rows = db.query(
        "SELECT t.name, c.oid IS NOT NULL, coalesce(c.reltuples, -1)::int8, \
           coalesce(pg_catalog.pg_total_relation_size(c.oid), 0)::int8 \
         FROM unnest($1::text[], $2::text[]) AS t(name, ref) \
         LEFT JOIN pg_catalog.pg_class AS c \
           ON c.oid = pg_catalog.to_regclass(t.ref) AND c.relkind IN ('r', 'p', 'm', 'f')",
        &[&well_formed, &quoted],
    )?;
    let mut out: Vec<TableSize> = rows
        .iter()
        .map(|r| TableSize {
            name: r.get(0),
            exists: r.get(1),
            rows_estimate: r.get(2),
            total_bytes: r.get(3),
        })
        .collect();
    for n in names {
        if !well_formed.contains(n) {
            out.push(TableSize {
                name: n.clone(),
                exists: false,
                rows_estimate: 0,
                total_bytes: 0,
            });
        }
    }
    Ok(out)
}
