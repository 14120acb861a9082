import http from 'k6/http';
import { check } from 'k6';

export const options = { vus: 1, duration: '10s' };

export default function () {
  const res = http.get('http://localhost:8080/json');
  check(res, {
    'is 200': (r) => r.status === 200,
    '2xx': (r) => r.status >= 200 && r.status < 300,
    'ok or created': (r) => r.status === 200 || r.status === 201,
    'listed': (r) => [200, 204].includes(r.status),
    'has data': (r) => r.body.includes('data'),
    'indexOf': function (res) { return res.body.indexOf('ok') !== -1; },
    'json field': (r) => r.json('data.ok') != null,
    'json chain': (r) => r.json().data.ok != undefined,
    'fast': (r) => r.timings.duration < 250,
    'json type': (r) => r.headers['Content-Type'] === 'application/json',
    'all at once': (r) => r.status == 200 && r.body.includes('ok'),
  });
}
