//! Column and constraint helpers shared by every migration, so types mean the same on SQLite, PostgreSQL and MySQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// UUID primary key: `uuid` on PostgreSQL, `binary(16)` on MySQL, a 16-byte blob on SQLite.
pub fn pk(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().primary_key().take()
}

/// A required UUID.
pub fn uuid(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().take()
}

/// An optional UUID.
pub fn uuid_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).uuid().null().take()
}

/// A UTC instant: `timestamptz` on PostgreSQL, `DATETIME(6)` on MySQL (no 2038 limit, microseconds), text on SQLite.
pub fn ts(m: &SchemaManager, name: &'static str) -> ColumnDef {
    let mut c = ColumnDef::new(name);
    match m.get_database_backend() {
        DatabaseBackend::MySql => c.custom("DATETIME(6)"),
        _ => c.timestamp_with_time_zone(),
    };
    c.not_null().take()
}

/// An optional UTC instant, typed as [`ts`].
pub fn ts_null(m: &SchemaManager, name: &'static str) -> ColumnDef {
    let mut c = ts(m, name);
    c.null();
    c
}

/// A required `varchar(len)` (explicit length: MySQL cannot index TEXT).
pub fn string(name: &'static str, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).not_null().take()
}

/// An optional `varchar(len)`.
pub fn string_null(name: &'static str, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).null().take()
}

pub fn text_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().null().take()
}

pub fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().not_null().take()
}

pub fn boolean(name: &'static str, default: bool) -> ColumnDef {
    ColumnDef::new(name)
        .boolean()
        .not_null()
        .default(default)
        .take()
}

pub fn int(name: &'static str, default: i32) -> ColumnDef {
    ColumnDef::new(name)
        .integer()
        .not_null()
        .default(default)
        .take()
}

pub fn bigint(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().take()
}

pub fn bigint_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().take()
}

/// JSON: `jsonb` on PostgreSQL, `json` on MySQL/MariaDB, JSON text on SQLite.
pub fn json(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).json_binary().not_null().take()
}

/// A named foreign key from `table.column` to `to_table.to_column`; key changes cascade, deletions do `on_delete`.
pub fn fk(
    name: &'static str,
    table: &'static str,
    column: &'static str,
    to_table: &'static str,
    to_column: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(to_table, to_column)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::Cascade)
        .take()
}

/// A named index on `columns`, in that order.
pub fn index(
    name: &'static str,
    table: &'static str,
    columns: &[&'static str],
) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in columns {
        i.col(*c);
    }
    i.take()
}

/// A named unique index on `columns`.
pub fn unique(
    name: &'static str,
    table: &'static str,
    columns: &[&'static str],
) -> IndexCreateStatement {
    let mut i = index(name, table, columns);
    i.unique();
    i
}

/// Create a table with its indexes.
pub async fn create(
    m: &SchemaManager<'_>,
    table: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    m.create_table(table).await?;
    for i in indexes {
        m.create_index(i).await?;
    }
    Ok(())
}

/// Drop tables in the order given (children first).
pub async fn drop(m: &SchemaManager<'_>, tables: &[&'static str]) -> Result<(), DbErr> {
    for t in tables {
        m.drop_table(Table::drop().table(*t).to_owned()).await?;
    }
    Ok(())
}
