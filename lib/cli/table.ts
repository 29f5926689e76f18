/** One column of a {@link renderTable} table. */
export interface Column<Row> {
  header: string;
  value(row: Row): string;
  /** Right-align (numbers). */
  right?: boolean;
}

/**
 * Plain-text table: a header, then one line per row, columns padded to their widest cell.
 *
 * @example
 * renderTable([{ header: 'id', value: (r) => r.id }], [{ id: 'hello' }]);
 * // ['id   ', 'hello']
 */
export function renderTable<Row>(columns: Column<Row>[], rows: Row[]): string[] {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => c.value(row)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) =>
    line
      .map((cell, i) => (columns[i]!.right ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
