import http from 'k6/http';
import { sleep } from 'k6';

export const options = {
  userAgent: 'MyK6UserAgentString/1.0',
  stages: [
    { duration: '10s', target: 20 },
    { duration: '1m', target: 20 },
    { duration: 5000, target: 0 },
  ],
};

export default function () {
  http.get('http://localhost:3000/');
  sleep(1);
}
