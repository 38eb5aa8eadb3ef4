from celery import shared_task

from notifications.celery import report_progress


@shared_task(notify_title="Yearly export")
def export(user_id, steps=3):
    for step in range(1, steps + 1):
        report_progress(100 * step / steps, f"Step {step} of {steps}")
    return {"message": f"{steps} steps done", "url": "/exports/1/"}
