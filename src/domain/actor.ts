/** Who is calling: an authenticated account (the API's auth sets it; the CLI and agents act as an account too). */
export interface Actor {
  user: string;
}
