import http from 'k6/http';
import { check } from 'k6';

export const options = { vus: 2, duration: '10s' };

export default function () {
  const responses = http.batch([
    'http://localhost/a',
    ['GET', 'http://localhost/b', null, { tags: { name: 'bee' } }],
    { method: 'POST', url: 'http://localhost/c', body: 'x=1' },
  ]);
  check(responses[0], { 'a ok': (r) => r.status === 200 });
  check(responses[2], { 'c ok': (r) => r.status === 201 });
  const named = http.batch({ home: 'http://localhost/', info: { method: 'GET', url: 'http://localhost/info' } });
  check(named.info, { 'info ok': (r) => r.status === 200 });
}
