import { describe, expect, it } from 'vitest';
import { ROUTES, routeUrl } from './routes.js';

describe('routeUrl', () => {
  it('fills in the ids, under the base URL with or without its trailing slash', () => {
    expect(routeUrl('http://head:8080', 'task', { requestId: 7, jobIndex: 3 }).href).toBe(
      'http://head:8080/v1/requests/7/tasks/3',
    );
    expect(routeUrl(new URL('http://head:8080/'), 'renew', { requestId: 7 }).href).toBe(
      'http://head:8080/v1/requests/7/lease/renew',
    );
  });

  it("keeps the base URL's path as a prefix", () => {
    expect(routeUrl('https://h/sheepdog', 'results', { requestId: 2 }).href).toBe(
      'https://h/sheepdog/v1/requests/2/results',
    );
    expect(routeUrl('https://h/a/b/', 'error', { requestId: 1, jobIndex: 9 }).href).toBe(
      'https://h/a/b/v1/requests/1/tasks/9/error',
    );
  });

  it('names every parameter of every route', () => {
    for (const [name, pattern] of Object.entries(ROUTES)) {
      const url = routeUrl('http://h/', name as keyof typeof ROUTES, { requestId: 1, jobIndex: 2 });
      expect(url.pathname).not.toContain(':');
      expect(url.pathname.split('/').length).toBe(pattern.split('/').length);
    }
  });
});
