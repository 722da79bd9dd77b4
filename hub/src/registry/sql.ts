/** The little the registry's stores need of a SQL database; `openPostgres` provides it. */
export interface SqlClient {
  query<T = Record<string, unknown>> (text: string, params?: unknown[]): Promise<T[]>
  /** Runs one or more statements without parameters. */
  exec (text: string): Promise<void>
  /** Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T> (fn: (tx: SqlSession) => Promise<T>): Promise<T>
  close (): Promise<void>
}

/** The statements of one transaction (a query without parameters may hold several). */
export type SqlSession = Pick<SqlClient, 'query'>
