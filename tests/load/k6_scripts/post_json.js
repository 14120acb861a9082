import http from 'k6/http';
import { check } from 'k6';

const payload = { user: 'ada', roles: ['admin', 'dev'], age: 36, ratio: 1.5, active: true };
const params = { headers: { 'Content-Type': 'application/json', 'X-Trace': 'k6' }, timeout: '5s' };

export default function () {
  const res = http.post('http://localhost:8008/users', JSON.stringify(payload), params);
  check(res, { created: (r) => r.status === 201 });
  http.post('http://localhost:8008/login', { user: 'ada', pass: 'x y' }, { timeout: 5000 });
  http.put('http://localhost:8008/users/1', JSON.stringify({ age: 37 }, null, 2), params);
  http.patch('http://localhost:8008/users/1', '{"age":38}', params);
  http.del('http://localhost:8008/users/1', null, params);
  http.request('GET', 'http://localhost:8008/users?page=2#top', null, params);
}
