// @ts-check
// A JavaScript helper checked with // @ts-check: fetch, Response and Headers are typed.

/**
 * @param {string} role
 * @returns {Promise<string>}
 */
export async function lookupTeam(role) {
  const res = await fetch("https://teams.example.com/by-role/" + encodeURIComponent(role), {
    method: "GET",
    headers: { accept: "application/json" },
  });
  if (!res.ok || res.headers.get("content-type") !== "application/json") return "none";
  /** @type {{ team?: string }} */
  const body = await res.json();
  return body.team ?? "none";
}
