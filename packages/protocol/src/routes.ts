/**
 * The endpoints of wire protocol v1. Every call carries `Authorization: Bearer <token>`, the
 * token of the request named in the path.
 * @module
 */

/**
 * Each endpoint's path, as a route pattern (`:name` is a positive integer).
 *
 * | route | method | body | answer |
 * |---|---|---|---|
 * | `task` | `GET` | | `TaskAnswer`; marks the task running |
 * | `result` | `POST` | the result's raw bytes | `SubmitAnswer` |
 * | `error` | `POST` | the error's stack, UTF-8 text | `SubmitAnswer` |
 * | `lease` | `POST` | `LeaseBody` (JSON) | `LeaseAnswer` |
 * | `renew` | `POST` | `RenewBody` (JSON) | `RenewAnswer` |
 * | `results` | `POST` | outcome frames (`OUTCOME_FRAMES_TYPE`) or `JsonOutcome[]` (JSON) | `ResultsAnswer` |
 */
export const ROUTES = {
  task: '/v1/requests/:requestId/tasks/:jobIndex',
  result: '/v1/requests/:requestId/tasks/:jobIndex/result',
  error: '/v1/requests/:requestId/tasks/:jobIndex/error',
  lease: '/v1/requests/:requestId/lease',
  renew: '/v1/requests/:requestId/lease/renew',
  results: '/v1/requests/:requestId/results',
} as const;

/** The name of one endpoint in {@link ROUTES}. */
export type RouteName = keyof typeof ROUTES;

/** The `:name` segments of a route pattern. */
type ParamNames<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamNames<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never;

/** The values a route's pattern needs: `{ requestId }`, and `jobIndex` for a task's routes. */
export type RouteParams<R extends RouteName> = {
  readonly [Name in ParamNames<(typeof ROUTES)[R]>]: number;
};

/**
 * The URL of an endpoint on a server. The base URL's path is kept as a prefix, so a server
 * mounted under `http://head:8080/sheepdog/` is reached there.
 *
 * @param base - the server's base URL, as the workers reach it
 * @param route - which endpoint
 * @param params - the request id (and job index) to fill in
 * @throws {TypeError} when `base` is not a URL
 */
export function routeUrl<R extends RouteName>(
  base: string | URL,
  route: R,
  params: RouteParams<R>,
): URL {
  const href = typeof base === 'string' ? base : base.href;
  const path = ROUTES[route].replace(/:(\w+)/g, (_, name: string) =>
    String((params as Record<string, number>)[name]),
  );
  // Relative to a base that ends in '/', so its own path stays in front.
  return new URL(path.slice(1), href.endsWith('/') ? href : `${href}/`);
}
