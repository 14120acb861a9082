import http from 'k6/http';
import { check, sleep } from 'k6';

export const options = {
  vus: 4,
  duration: '1m30s',
  tags: { team: 'api' },
  thresholds: {
    http_req_duration: ['p(95)<500', 'avg<200'],
    http_req_failed: ['rate<0.01'],
  },
};

export default function () {
  const res = http.get('https://test.example.com/index.html');
  check(res, { 'status is 200': (r) => r.status === 200 });
  sleep(0.5);
}
